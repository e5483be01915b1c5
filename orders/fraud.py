"""Fraud screening rules: pure and deterministic, so the same order always gets the same verdict.

The screening task (``orders.tasks.screen_for_fraud``) applies them to the order's current row; keeping
them free of the database lets them be tested alone and read in one sitting.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCKED_EMAIL_DOMAINS = frozenset({"fraud.example"})
LARGEST_TOTAL_CENTS = 1_000_000  # above 10,000.00 EUR an order needs a person, not a rule
EMBARGOED_COUNTRIES = frozenset({"KP", "IR", "SY", "CU"})


@dataclass(frozen=True)
class Verdict:
    """Whether the order may proceed; ``reason`` says why not (None when it passed)."""

    passed: bool
    reason: str | None = None


PASSED = Verdict(passed=True)


def screen(customer_email: str, total_cents: int, country: str) -> Verdict:
    """The first rule that fails decides; an order that breaks none passes."""
    domain = customer_email.rpartition("@")[2].strip().lower()
    if domain in BLOCKED_EMAIL_DOMAINS:
        return Verdict(False, f"email domain {domain} is blocked")
    if total_cents > LARGEST_TOTAL_CENTS:
        return Verdict(False, f"total {total_cents} cents is over the limit of {LARGEST_TOTAL_CENTS}")
    if country.upper() in EMBARGOED_COUNTRIES:
        return Verdict(False, f"shipping to {country.upper()} is embargoed")
    return PASSED
