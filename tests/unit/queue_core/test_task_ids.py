"""Task IDs: UUIDv7, made by the caller, ordered by the time they were made."""

from __future__ import annotations

import time
import uuid

from queue_core._ids import new_task_id


def _unix_ms(task_id: uuid.UUID) -> int:
    return task_id.int >> 80


def test_ids_are_version_7_with_the_rfc_4122_variant() -> None:
    for _ in range(200):
        task_id = new_task_id()
        assert task_id.version == 7
        assert task_id.variant == uuid.RFC_4122


def test_ids_lead_with_the_current_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    task_id = new_task_id()
    after = time.time_ns() // 1_000_000
    assert before <= _unix_ms(task_id) <= after


def test_ids_made_in_later_milliseconds_sort_after_earlier_ones() -> None:
    made: list[uuid.UUID] = []
    while len(made) < 20:
        task_id = new_task_id()
        if not made or _unix_ms(task_id) > _unix_ms(made[-1]):
            made.append(task_id)
    assert made == sorted(made)
    assert [str(i) for i in made] == sorted(str(i) for i in made)  # as text too, as PostgreSQL compares uuid


def test_ids_are_unique() -> None:
    assert len({new_task_id() for _ in range(10_000)}) == 10_000
