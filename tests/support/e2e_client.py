"""What an end-to-end scenario does over HTTP, and what it checks afterwards, as a customer and an auditor.

A customer places orders with an ``Idempotency-Key`` and, when the shop answers 503 (database away) or
the connection drops, sends the same request again: the key makes that safe. A request answered 409
with ``Retry-After`` (a lock held past the shop's patience) is sent again too, as the API documents. An
auditor then reads every order and payment through the API and the gateway's ledger and lists whatever
breaks the shop's promises (``broken_promises``): an order stuck, a failure without a reason, a paid order
charged twice or not at all, money kept for an order that was not paid.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.credentials import OPERATOR_HEADERS

FINAL_ORDER_STATES = frozenset({"shipped", "rejected", "payment_failed", "cancelled"})
FAILED_ORDER_STATES = frozenset({"rejected", "payment_failed"})
PAID_ORDER_STATES = frozenset({"paid", "shipped"})
SKUS = ["CRUNCHY-ARMCHAIR", "WOBBLY-TABLE", "SHINY-LAMP", "FLUFFY-RUG", "TINY-TEAPOT", "HEAVY-BOOKSHELF"]
COUNTRIES = ["DE", "FR", "NL", "GB", "US", "IT", "ES"]
PAGE = 100
RETRY_SECONDS = 120.0  # how long a customer keeps sending a request the shop cannot answer yet


def order_body(rng: random.Random, email: str) -> dict[str, Any]:
    """An ordinary basket: one to three products, a few of each, to a country nobody embargoes."""
    skus = rng.sample(SKUS, k=rng.randint(1, 3))
    return {
        "customer_email": email,
        "shipping_country": rng.choice(COUNTRIES),
        "lines": [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in skus],
    }


def web_client(web_url: str, *, operator: bool = True) -> httpx.Client:
    """An HTTP client on the shop's web app; thread-safe, so one serves a whole pool of customers.

    It presents the operator key, as the auditor (and a back-office script) would: placing orders needs
    none, but listing them, and cancelling without each order's own token, does.
    """
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    headers = OPERATOR_HEADERS if operator else {}
    return httpx.Client(base_url=web_url, timeout=30.0, limits=limits, headers=headers)


def send_until_answered(
    send: Callable[[], httpx.Response], *, retried: Counter[str] | None = None
) -> httpx.Response:
    """Send a request again while the shop cannot answer it (503, 409 Retry-After, connection lost).

    Only requests that are safe to repeat come here: reads, an order with its ``Idempotency-Key``, a
    cancellation. ``retried`` counts the retries by reason, for the scenario's summary.
    """
    deadline = time.monotonic() + RETRY_SECONDS
    while True:
        try:
            response = send()
        except httpx.TransportError as error:  # refused while gunicorn restarts a worker, or dropped
            reason, wait = type(error).__name__, 0.5
        else:
            busy = response.status_code == 409 and "Retry-After" in response.headers
            if response.status_code != 503 and not busy:
                return response
            reason = str(response.status_code)
            wait = min(float(response.headers.get("Retry-After", "1")), 1.0)
        if retried is not None:
            retried[reason] += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer but {reason} for {RETRY_SECONDS:.0f} s")
        time.sleep(wait)


def place_order(
    client: httpx.Client, body: dict[str, Any], key: str, *, retried: Counter[str] | None = None
) -> dict[str, Any]:
    """POST /api/orders with ``key``, sent again until answered; the 202's body (the order)."""
    response = send_until_answered(
        lambda: client.post("/api/orders", json=body, headers={"Idempotency-Key": key}), retried=retried
    )
    assert response.status_code == 202, f"placing {key}: {response.status_code} {response.text}"
    order: dict[str, Any] = response.json()
    return order


def place_orders(
    client: httpx.Client,
    count: int,
    *,
    label: str,
    seed: int = 0,
    customers: int = 8,
    retried: Counter[str] | None = None,
    email_of: Callable[[int], str] | None = None,
) -> list[str]:
    """Place ``count`` orders from ``customers`` threads at once; their IDs, in the order they were sent."""
    rng = random.Random(seed)
    email_of = email_of or (lambda n: f"customer-{n}@{label}.example.com")
    bodies = [order_body(rng, email_of(n)) for n in range(count)]
    lock = threading.Lock()
    shared: Counter[str] = Counter()

    def place(n: int) -> str:
        local: Counter[str] = Counter()
        order = place_order(client, bodies[n], f"{label}-{n}", retried=local)
        with lock:
            shared.update(local)
        return str(order["id"])

    with ThreadPoolExecutor(max_workers=customers) as pool:
        ids = list(pool.map(place, range(count)))
    if retried is not None:
        retried.update(shared)
    return ids


def all_pages(client: httpx.Client, path: str, key: str, **query: str) -> list[dict[str, Any]]:
    """Every item of a paged list (``{key: [...], next_before}``) filtered by ``query``, newest first."""
    found: list[dict[str, Any]] = []
    before: str | None = None
    while True:
        params = {**query, "limit": str(PAGE), **({"before": before} if before else {})}
        response = send_until_answered(lambda p=params: client.get(path, params=p))  # type: ignore[misc]
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        page = response.json()
        found += page[key]
        before = page["next_before"]
        if before is None:
            return found


def orders_by_id(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {order["id"]: order for order in all_pages(client, "/api/orders", "orders")}


def wait_until_settled(
    client: httpx.Client,
    order_ids: Iterable[str],
    *,
    timeout: float,
    while_waiting: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, Any]]:
    """Poll until every one of ``order_ids`` is final and none of their payments is being processed.

    An order is final before its money is: a cancelled order's refund, or a failed payment's void, runs
    after it. Returns the orders by ID.
    """
    wanted = set(order_ids)
    deadline = time.monotonic() + timeout
    while True:
        while_waiting()
        orders = orders_by_id(client)
        unsettled = Counter(orders[i]["state"] if i in orders else "missing" for i in wanted)
        for state in FINAL_ORDER_STATES:
            unsettled.pop(state, None)
        busy = all_pages(client, "/api/payments", "payments", being_processed="true")
        unsettled.update(f"payment {p['state']}" for p in busy if p["order_id"] in wanted)
        if not unsettled:
            return {i: orders[i] for i in wanted}
        if time.monotonic() > deadline:
            raise AssertionError(f"orders not settled after {timeout:.0f} s: {dict(unsettled)}")
        time.sleep(1.0)


def cancel_order(
    client: httpx.Client, order_id: str, *, retried: Counter[str] | None = None
) -> httpx.Response:
    """POST .../cancel, sent again while the shop cannot answer (a 503 while the database restarts)."""
    return send_until_answered(lambda: client.post(f"/api/orders/{order_id}/cancel"), retried=retried)


@dataclass
class Audit:
    """Orders, their payments and the gateway's charges, with every broken promise found among them."""

    orders: dict[str, dict[str, Any]]
    payments_by_order: dict[str, dict[str, Any]]
    charges_by_payment: dict[str, list[dict[str, Any]]]
    problems: list[str] = field(default_factory=list)

    @property
    def order_states(self) -> Counter[str]:
        return Counter(order["state"] for order in self.orders.values())

    @property
    def charge_statuses(self) -> Counter[str]:
        return Counter(c["status"] for charges in self.charges_by_payment.values() for c in charges)


def audit(client: httpx.Client, ledger: dict[str, Any], order_ids: Sequence[str]) -> Audit:
    """Read the orders, payments and ledger, and check every promise the shop makes about them.

    - every order is final; a rejected or payment-failed one says why;
    - a paid or shipped order's payment is captured, and the gateway holds exactly one captured charge
      for it, never refunded;
    - any other order keeps no money: none of its charges is still captured (refunded or voided is fine);
    - every charge at the gateway was made under the key of a payment the shop knows of.
    """
    orders = orders_by_id(client)
    payments = {p["order_id"]: p for p in all_pages(client, "/api/payments", "payments")}
    payment_of_key = {p["idempotency_key"]: p for p in payments.values()}
    charges: dict[str, list[dict[str, Any]]] = {}
    strangers: list[str] = []
    for charge in ledger["charges"]:
        # By the payment's key: a void that arrived before any charge leaves a tombstone without reference.
        owner = payment_of_key.get(charge["idempotency_key"])
        if owner is None or charge["reference"] not in (None, owner["id"]):
            strangers.append(f"the gateway holds a charge no payment of the shop made: {charge}")
        else:
            charges.setdefault(owner["id"], []).append(charge)
    result = Audit({i: orders[i] for i in order_ids if i in orders}, payments, charges)
    problems = result.problems
    problems += strangers
    problems += [f"order {i} is missing from the API" for i in order_ids if i not in orders]
    for order_id, order in result.orders.items():
        state = order["state"]
        payment = payments.get(order_id)
        kept = [c for c in charges.get(payment["id"], []) if c["status"] == "captured"] if payment else []
        if state not in FINAL_ORDER_STATES:
            problems.append(f"order {order_id} is stuck in {state}")
        if state in FAILED_ORDER_STATES and not order["failure_reason"]:
            problems.append(f"order {order_id} is {state} without a reason")
        if state in PAID_ORDER_STATES:
            if payment is None or payment["state"] != "captured":
                problems.append(
                    f"order {order_id} is {state} but its payment is {payment and payment['state']}"
                )
            elif len(kept) != 1 or kept[0]["id"] != payment["gateway_charge_id"]:
                problems.append(f"order {order_id} is {state} with {len(kept)} captured charges: {kept}")
        elif kept:
            problems.append(f"order {order_id} is {state} but the gateway kept its money: {kept}")
    return result


@dataclass
class Summary:
    """What a scenario reports: what it did, what happened, and how long it took."""

    scenario: str
    orders: Counter[str] = field(default_factory=Counter)
    charges: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)  # requests the client sent again, by reason
    task_retries: int = 0  # attempts beyond each task's first
    kills: int = 0
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def finish(self) -> None:
        self.seconds = time.monotonic() - self.started

    def lines(self) -> list[str]:
        def counts(counter: Counter[str]) -> str:
            return ", ".join(f"{n} {what}" for what, n in sorted(counter.items())) or "none"

        return [
            f"{self.scenario}: {self.seconds:.1f} s",
            f"  orders:  {sum(self.orders.values())} ({counts(self.orders)})",
            f"  charges: {counts(self.charges)}",
            f"  retries: {self.task_retries} task attempts beyond the first; "
            f"requests sent again: {counts(self.retried)}",
            f"  kills:   {self.kills}",
            *(f"  {note}" for note in self.notes),
        ]


def task_retries(tasks: Sequence[dict[str, Any]]) -> int:
    """Attempts beyond the first, over ``shop queue list --json`` rows."""
    return sum(max(0, int(task["attempts"]) - 1) for task in tasks)
