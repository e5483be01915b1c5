"""latest_tick: the most recent tick of a schedule at or before a moment."""

from __future__ import annotations

import datetime as dt

from queue_core import Schedule
from queue_core._periodic import latest_tick


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_every_ticks_are_aligned_to_the_epoch() -> None:
    every_minute = Schedule(name="restock-shelves", task="restock", every=60)
    assert latest_tick(every_minute, at("2026-11-22T10:37:12.5+00:00")) == at("2026-11-22T10:37:00+00:00")


def test_every_second_drops_the_fraction() -> None:
    every_second = Schedule(name="pulse", task="pulse", every=1)
    assert latest_tick(every_second, at("2026-11-22T10:37:12.999+00:00")) == at("2026-11-22T10:37:12+00:00")


def test_a_moment_on_a_tick_is_that_tick() -> None:
    every_quarter = Schedule(name="count-parcels", task="count", every=900)
    assert latest_tick(every_quarter, at("2026-11-22T10:45:00+00:00")) == at("2026-11-22T10:45:00+00:00")


def test_every_ticks_are_the_same_moment_whatever_the_offset_of_now() -> None:
    every_hour = Schedule(name="hourly", task="hourly", every=3600)
    in_paris = at("2026-11-22T11:20:00+01:00")
    assert latest_tick(every_hour, in_paris) == at("2026-11-22T10:00:00+00:00")


def test_cron_tick_is_the_previous_matching_minute() -> None:
    quarter_hours = Schedule(name="sweep-depot", task="sweep", cron="*/15 * * * *")
    tick = latest_tick(quarter_hours, at("2026-11-22T10:37:12+00:00"))
    assert tick == at("2026-11-22T10:30:00+00:00")
    assert tick.tzinfo is not None and tick.utcoffset() == dt.timedelta(0)


def test_cron_moment_on_a_tick_is_that_tick() -> None:
    quarter_hours = Schedule(name="sweep-depot", task="sweep", cron="*/15 * * * *")
    assert latest_tick(quarter_hours, at("2026-11-22T10:45:00+00:00")) == at("2026-11-22T10:45:00+00:00")


def test_cron_daily_tick_before_its_hour_is_yesterdays() -> None:
    nightly = Schedule(name="nightly-inventory", task="inventory", cron="0 3 * * *")
    assert latest_tick(nightly, at("2026-11-22T02:59:59+00:00")) == at("2026-11-21T03:00:00+00:00")
    assert latest_tick(nightly, at("2026-11-22T03:00:01+00:00")) == at("2026-11-22T03:00:00+00:00")


def test_cron_weekly_tick_crosses_month_ends() -> None:
    mondays = Schedule(name="weekly-report", task="report", cron="30 8 * * mon")
    # Tuesday 2026-12-01; the previous Monday 08:30 is 2026-11-30.
    assert latest_tick(mondays, at("2026-12-01T07:00:00+00:00")) == at("2026-11-30T08:30:00+00:00")
