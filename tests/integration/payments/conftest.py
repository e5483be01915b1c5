"""Fixtures for the payments context: a real gateway simulator in-process, and a worker wired to it.

The simulator is the real one (``gateway_simulator.create_app``) on an SQLite file of its own, reached
through ``httpx.WSGITransport``: every charge the handlers make is in its ledger, and "exactly once" is
asserted there, not on our own rows. ``rolls`` decides the simulator's dice: each ``random()`` takes the
next scripted value, then ``rolls.otherwise``; with the rates a test sets, that picks each charge's fate.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import gateway_simulator
from payments import services, tasks
from payments.gateway_client import ChargeOutcome, GatewayClient, GatewayTimeout
from payments.models import Payment
from queue_core import RetryPolicy, RunningTask, TaskRegistry, TaskState, Worker, state_of
from queue_core.testing import DrainResult, drain
from shop.bootstrap import session_info
from tests.support.domain import EventRecorder, recording_session
from tests.support.gateway_requests import GATEWAY_API_KEY, authorized
from tests.support.inprocess import run_until_idle, task_row

GATEWAY_URL = "http://gateway.test"
NO_MISBEHAVIOUR = {"latency_ms": 0, "transient_error_rate": 0.0, "timeout_rate": 0.0, "decline_rate": 0.0}


class ScriptedRolls(random.Random):
    """The simulator's dice: ``script`` values first, then ``otherwise``; ``choice`` takes the first item."""

    def __init__(self) -> None:
        super().__init__(0)
        self.script: list[float] = []
        self.otherwise = 0.99  # above every rate below 1: nothing goes wrong

    def random(self) -> float:
        return self.script.pop(0) if self.script else self.otherwise

    def choice(self, seq: Any) -> Any:
        return seq[0]


class SimulatedGateway:
    """The simulator seen from a test: the merchant's client, the ledger, and the misbehaviour knobs."""

    def __init__(self, app: Flask, rolls: ScriptedRolls) -> None:
        self.app = app
        self.rolls = rolls
        self.transport = httpx.WSGITransport(app=app)
        self.client = GatewayClient(GATEWAY_URL, api_key=GATEWAY_API_KEY, transport=self.transport)
        self._harness = authorized(app.test_client())

    def misbehave(self, **settings: float) -> None:
        """Change the failure injection (``transient_error_rate=1``...); timeouts never hang here."""
        response = self._harness.put("/v1/failure-injection", json={"hang_seconds": 0.001, **settings})
        assert response.status_code == 200, response.get_json()

    def ledger(self, payment_id: uuid.UUID) -> dict[str, Any]:
        """The gateway's books for one payment: ``charges`` and a ``summary`` of counts by status."""
        response = self._harness.get("/v1/ledger", query_string={"reference": str(payment_id)})
        assert response.status_code == 200
        ledger: dict[str, Any] = response.get_json()
        return ledger

    def statuses(self, payment_id: uuid.UUID) -> list[str]:
        """The status of each charge the gateway holds for the payment, oldest first."""
        return [charge["status"] for charge in self.ledger(payment_id)["charges"]]

    def charge_under(self, idempotency_key: str) -> dict[str, Any] | None:
        """The charge recorded under ``idempotency_key`` (a voided tombstone has no reference)."""
        response = self._harness.get(f"/v1/charges/{idempotency_key}")
        if response.status_code == 404:
            return None
        found: dict[str, Any] = response.get_json()
        return found


@pytest.fixture
def rolls() -> ScriptedRolls:
    return ScriptedRolls()


@pytest.fixture
def simulated_gateway(tmp_path: Path, rolls: ScriptedRolls) -> Iterator[SimulatedGateway]:
    app = gateway_simulator.create_app(
        f"sqlite:///{tmp_path / 'gateway.sqlite3'}", api_key=GATEWAY_API_KEY, rng=rolls
    )
    gateway = SimulatedGateway(app, rolls)
    gateway.misbehave(**NO_MISBEHAVIOUR)
    yield gateway
    gateway.client.close()
    app.extensions["gateway_simulator"].engine.dispose()


@pytest.fixture
def registry() -> TaskRegistry:
    """The payments registry with retries due at once, so ``run_until_idle`` sees every attempt through.

    A copy: the module's own registry keeps its production policies. The attempts budget comes from the
    task row (6 for a charge), as in production.
    """
    fast = TaskRegistry().include(tasks.registry)
    fast.with_options("payments.charge", retry=RetryPolicy(max_attempts=6, base_seconds=0, cap_seconds=0))
    fast.with_options("payments.refund", retry=RetryPolicy(max_attempts=20, base_seconds=0, cap_seconds=0))
    return fast


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


class PaymentsDesk:
    """What a test does with payments: request and cancel through the services, run the worker, read."""

    def __init__(
        self, engine: Engine, registry: TaskRegistry, recorder: EventRecorder, gateway: SimulatedGateway
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.recorder = recorder
        self.gateway = gateway
        self.client: GatewayClient = gateway.client

    def session_info(self) -> dict[str, Any]:
        return session_info(react=self.recorder, gateway=self.client)

    def request(self, amount_cents: int = 4_200, currency: str = "EUR") -> Payment:
        with recording_session(self.engine, self.recorder, **self.session_info()) as session:
            payment = services.request_payment(
                session, order_id=uuid.uuid4(), amount_cents=amount_cents, currency=currency
            )
            session.flush()
            session.expunge(payment)
        return payment

    def cancel(self, order_id: uuid.UUID) -> Payment | None:
        with recording_session(self.engine, self.recorder, **self.session_info()) as session:
            payment = services.cancel_payment_for_order(session, order_id)
            if payment is not None:
                session.flush()
                session.expunge(payment)
        return payment

    def work(self, registry: TaskRegistry | None = None) -> Worker:
        """Run a worker until no payments task is due."""
        return run_until_idle(self.engine, registry or self.registry, session_info=self.session_info())

    def drain(self, registry: TaskRegistry | None = None, *, advance: float = 0.0) -> DrainResult:
        """Run the due payments tasks in this thread (``queue_core.testing.drain``); what ran."""
        return drain(
            self.engine, registry or self.registry, advance=advance, session_info=self.session_info()
        )

    def payment(self, payment_id: uuid.UUID) -> Payment:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.scalars(select(Payment).where(Payment.id == payment_id)).one()


@pytest.fixture
def desk(
    engine: Engine, registry: TaskRegistry, recorder: EventRecorder, simulated_gateway: SimulatedGateway
) -> PaymentsDesk:
    return PaymentsDesk(engine, registry, recorder, simulated_gateway)


class LosesAnswers(GatewayClient):
    """A gateway client whose charges reach the real simulator but whose first ``losses`` answers are lost.

    "The charge happened but we never heard": the ledger holds the capture, the handler sees a timeout.
    (The in-process transport cannot time out for real.)
    """

    def __init__(self, desk: PaymentsDesk, losses: int) -> None:
        super().__init__(GATEWAY_URL, api_key=GATEWAY_API_KEY, transport=desk.gateway.transport)
        self.losses = losses
        self.charges_sent = 0

    def charge(self, **request: Any) -> ChargeOutcome:
        outcome = super().charge(**request)
        self.charges_sent += 1
        if self.losses > 0:
            self.losses -= 1
            raise GatewayTimeout(f"no answer within 5 s (the gateway answered {outcome!r}; we never heard)")
        return outcome


def running_task(engine: Engine, task_id: uuid.UUID) -> RunningTask:
    """What a worker would hand the handler for this task (for running it by hand, outside a worker)."""
    row = task_row(engine, task_id)
    return RunningTask(
        id=task_id,
        name=row["name"],
        queue=row["queue"],
        attempt=row["attempts"] + 1,
        max_attempts=row["max_attempts"],
        args=None,
        parent_id=None,
        root_id=None,
        lease_token=uuid.uuid4(),
        _engine=engine,
    )


def state_of_task(desk: PaymentsDesk, task_id: uuid.UUID | None) -> TaskState:
    assert task_id is not None
    with desk.engine.connect() as connection:
        return state_of(connection, task_id)
