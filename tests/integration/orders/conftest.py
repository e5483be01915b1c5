"""Fixtures for the orders context's integration tests (helpers live in ``support.py``)."""

from __future__ import annotations

import pytest

from tests.support.domain import EventRecorder


@pytest.fixture
def recorder() -> EventRecorder:
    """Receives every event the orders context publishes in the test's sessions and handlers."""
    return EventRecorder()
