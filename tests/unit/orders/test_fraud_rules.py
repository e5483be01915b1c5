"""Fraud screening rules: pure, deterministic, the first broken rule decides."""

from __future__ import annotations

import pytest

from orders.fraud import LARGEST_TOTAL_CENTS, PASSED, Verdict, screen


def test_an_ordinary_order_passes() -> None:
    assert screen("ada@example.com", 24_900, "DE") == PASSED == Verdict(True, None)


@pytest.mark.parametrize("email", ["mallory@fraud.example", "Mallory@FRAUD.Example", "x@fraud.example "])
def test_an_email_at_the_blocked_domain_is_rejected_whatever_its_case(email: str) -> None:
    verdict = screen(email, 1_450, "DE")
    assert not verdict.passed
    assert verdict.reason == "email domain fraud.example is blocked"


def test_a_lookalike_domain_is_not_blocked() -> None:
    assert screen("ada@notfraud.example", 1_450, "DE").passed
    assert screen("fraud.example@example.com", 1_450, "DE").passed


def test_the_largest_total_is_allowed_and_one_cent_more_is_not() -> None:
    assert screen("ada@example.com", LARGEST_TOTAL_CENTS, "DE").passed
    verdict = screen("ada@example.com", LARGEST_TOTAL_CENTS + 1, "DE")
    assert verdict == Verdict(False, "total 1000001 cents is over the limit of 1000000")


@pytest.mark.parametrize("country", ["KP", "IR", "SY", "CU", "kp"])
def test_embargoed_destinations_are_rejected(country: str) -> None:
    verdict = screen("ada@example.com", 1_450, country)
    assert verdict == Verdict(False, f"shipping to {country.upper()} is embargoed")


def test_the_first_broken_rule_gives_the_reason() -> None:
    verdict = screen("mallory@fraud.example", LARGEST_TOTAL_CENTS * 3, "KP")
    assert verdict.reason == "email domain fraud.example is blocked"


def test_the_same_order_always_gets_the_same_verdict() -> None:
    verdicts = {screen("ada@example.com", 2_000_000, "FR") for _ in range(10)}
    assert len(verdicts) == 1
