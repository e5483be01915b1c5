"""The Shop page (``/``): place an order with a form, place 50 random ones, and (in demo mode, where the
gateway is the simulator) set how badly the payment gateway behaves. The form is checked by the orders
API's own marshmallow schema, so the page and the API refuse exactly the same input, each field with its
message.
"""

from __future__ import annotations

import random
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from flask import Blueprint, redirect, request, url_for
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.wrappers import Response as WerkzeugResponse

from orders import services as orders_services
from orders.models import FINAL_ORDER_STATES, Product
from orders.schemas import IdempotencyKeyIn, PlaceOrderIn
from payments.gateway_client import BearerApiKey
from shop.config import app_settings
from shop.pages import readings, security
from shop.pages.common import db, render

blueprint = Blueprint(
    "shop_front",
    __name__,
    static_folder="static",
    static_url_path="/pages/static",
    template_folder="templates",
)

FORM_LINES = 3
RANDOM_ORDER_COUNT = 50
COUNTRIES = ["DE", "FR", "NL", "GB", "US", "ES", "IT", "SE"]
GATEWAY_SECONDS = 2.0  # the page waits this long for the gateway's settings, then says it is away
RECENT_ORDERS = 10


class FailureInjectionIn(Schema):
    """The failure-injection form, checked here so a typo is a message on the page, not the gateway's 400."""

    latency_ms = fields.Integer(
        required=True, validate=validate.Range(0, 10_000, error="Must be between 0 and 10000 ms.")
    )
    transient_error_rate = fields.Float(required=True, validate=validate.Range(0, 1, error="Must be 0 to 1."))
    timeout_rate = fields.Float(required=True, validate=validate.Range(0, 1, error="Must be 0 to 1."))
    decline_rate = fields.Float(required=True, validate=validate.Range(0, 1, error="Must be 0 to 1."))


FAILURE_INJECTION_IN_DEMO_MODE_ONLY = (
    "Failure injection is a feature of the payment gateway simulator, so it is available in demo mode only."
)
FAILURE_KNOBS = [
    ("latency_ms", "Latency (ms)", "Every charge waits this long."),
    ("transient_error_rate", "Transient error rate", "503s: the charge task retries with the same key."),
    ("timeout_rate", "Timeout rate", "The gateway hangs (having charged, or not): retried, charged once."),
    ("decline_rate", "Decline rate", "Card declined: the order ends payment_failed."),
]


@blueprint.get("/")
def shop() -> tuple[str, int]:
    """The shop: the order form, the gateway's failure injection (in demo mode) and the latest orders."""
    return _page()


@blueprint.post("/shop/orders")
def place_order() -> WerkzeugResponse | tuple[str, int]:
    """Place the order in the form; a bad field re-shows the form with its message (422), never a 500."""
    security.check_post(app_settings())
    form, rows = _order_form()
    errors: dict[str, list[str]] = {}
    try:
        body = PlaceOrderIn().load(form)
    except ValidationError as error:
        errors = _field_errors(error.messages, rows)
        body = None
    key = request.form.get("idempotency_key") or None
    try:
        IdempotencyKeyIn().load({"Idempotency-Key": key} if key else {})
    except ValidationError:
        key = None  # a tampered hidden field: place the order without replay protection
    if body is not None:
        session = db()
        try:
            placed = orders_services.place_order(
                session,
                customer_email=body["customer_email"],
                shipping_country=body["shipping_country"],
                lines=[(line["sku"], line["quantity"]) for line in body["lines"]],
                idempotency_key=key,
            )
        except orders_services.UnknownProducts as unknown:
            errors = {"lines": [str(unknown)]}
        except orders_services.IdempotencyKeyReused:
            errors = {"form": ["This form was already sent with other values; reload the page."]}
        else:
            session.commit()
            return redirect(url_for("shop_front.shop", placed=placed.order.id), code=303)
    return _page(status=422, values=request.form.to_dict(), errors=errors)


@blueprint.post("/shop/random-orders")
def place_random_orders() -> WerkzeugResponse:
    """Place 50 orders of random products in one transaction; about one in ten from fraud.example."""
    security.check_post(app_settings())
    session = db()
    rng = random.Random()
    skus = [product.sku for product in orders_services.list_products(session)]
    for n in range(RANDOM_ORDER_COUNT):
        chosen = rng.sample(skus, k=rng.randint(1, min(3, len(skus))))
        orders_services.place_order(
            session,
            customer_email="mallory@fraud.example" if rng.random() < 0.1 else f"shopper{n}@example.com",
            shipping_country=rng.choice(COUNTRIES),
            lines=[(sku, rng.randint(1, 2)) for sku in chosen],
        )
    session.commit()
    return redirect(url_for("shop_front.shop", placed_many=RANDOM_ORDER_COUNT), code=303)


@blueprint.post("/shop/failure-injection")
def set_failure_injection() -> WerkzeugResponse | tuple[str, int]:
    """Send the form's settings to the gateway (``PUT /v1/failure-injection``); in demo mode only."""
    security.check_post(app_settings())
    if not app_settings().demo_mode:
        raise security.Refused(403, "Demo mode only", FAILURE_INJECTION_IN_DEMO_MODE_ONLY)
    form = {name: request.form.get(name, "").strip() for name, _, _ in FAILURE_KNOBS}
    try:
        changes = FailureInjectionIn().load(form)
    except ValidationError as error:
        found = error.messages if isinstance(error.messages, dict) else {"form": error.messages}
        messages = {str(name): _texts(value) for name, value in found.items()}
        return _page(status=422, failure_values=form, failure_errors=messages)
    try:
        _call_gateway("PUT", "/v1/failure-injection", json=changes)
    except httpx.HTTPError as error:
        where = _shown_url(app_settings().gateway_url)
        message = f"The gateway at {where} did not take the settings: {_why(error)}."
        return _page(status=502, failure_values=form, failure_errors={"gateway": [message]})
    return redirect(url_for("shop_front.shop", injected="1"), code=303)


def _page(status: int = 200, **overrides: Any) -> tuple[str, int]:
    session = db()
    recent = readings.order_rows(session, orders_services.list_orders(session, limit=RECENT_ORDERS))
    live_refresh = bool(request.headers.get("X-Live-Refresh"))  # only the recent orders are swapped in
    # Only the demo's gateway is the simulator: a real provider has no failure injection to show, and a
    # page must not call it (with the API key, up to GATEWAY_SECONDS) for every visitor.
    simulated = app_settings().demo_mode
    failure, gateway_problem = _gateway_settings() if simulated and not live_refresh else ({}, None)
    notice = None
    if request.args.get("placed"):
        notice = f"Order {request.args['placed']} placed: watch its tasks below or on the Orders page."
    elif request.args.get("placed_many"):
        notice = f"{request.args['placed_many']} random orders placed."
    elif request.args.get("injected"):
        notice = "The gateway's failure injection is updated."
    context: dict[str, Any] = {
        "title": "Shop",
        "products": orders_services.list_products(session),
        "countries": COUNTRIES,
        "form_lines": FORM_LINES,
        "values": {},
        "errors": {},
        "idempotency_key": str(uuid.uuid4()),
        "failure_knobs": FAILURE_KNOBS,
        "failure_values": failure,
        "failure_errors": {"gateway": [gateway_problem]} if gateway_problem else {},
        "gateway_url": _shown_url(app_settings().gateway_url) if simulated else None,
        "failure_injection_unavailable": FAILURE_INJECTION_IN_DEMO_MODE_ONLY,
        "recent": recent,
        "busy": any(row.order.order_state not in FINAL_ORDER_STATES for row in recent),
        "refresh_seconds": 2,
        "notice": notice,
        "available": _available,
    }
    context.update(overrides)
    return render("shop.html", status, **context)


def _available(product: Product) -> int:
    return product.on_hand - product.reserved


def _order_form() -> tuple[dict[str, Any], list[int]]:
    """The form as the API's JSON body; ``rows`` maps each line back to the form row it came from."""
    lines: list[dict[str, Any]] = []
    rows: list[int] = []
    for row in range(FORM_LINES):
        sku = request.form.get(f"line-{row}-sku", "").strip()
        quantity = request.form.get(f"line-{row}-quantity", "").strip()
        if not sku and not quantity:
            continue
        whole = quantity.isascii() and quantity.isdigit()
        line: dict[str, Any] = {"sku": sku, "quantity": int(quantity) if whole else quantity}
        lines.append(line)
        rows.append(row)
    form = {
        "customer_email": request.form.get("customer_email", "").strip(),
        "shipping_country": request.form.get("shipping_country", "").strip(),
        "lines": lines,
    }
    return form, rows


def _field_errors(messages: dict[str, Any] | list[Any], rows: list[int]) -> dict[str, list[str]]:
    """marshmallow's nested messages flattened to the form's field names (``line-1-quantity``)."""
    if not isinstance(messages, dict):
        return {"form": [str(message) for message in messages]}
    flat: dict[str, list[str]] = {}
    for name, value in messages.items():
        if name == "lines" and isinstance(value, dict):
            for index, line_messages in value.items():
                row = rows[int(index)] if str(index).isdigit() and int(index) < len(rows) else 0
                if isinstance(line_messages, dict):
                    for field_name, texts in line_messages.items():
                        flat.setdefault(f"line-{row}-{field_name}", []).extend(_texts(texts))
                else:
                    flat.setdefault("lines", []).extend(_texts(line_messages))
        else:
            flat.setdefault(str(name), []).extend(_texts(value))
    return flat


def _texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, dict):
        return [text for inner in value.values() for text in _texts(inner)]
    return [str(value)]


def _gateway_settings() -> tuple[dict[str, Any], str | None]:
    """The gateway's failure injection now, or the knobs' blanks and why they could not be read."""
    try:
        found: dict[str, Any] = _call_gateway("GET", "/v1/failure-injection").json()
        return found, None
    except (httpx.HTTPError, ValueError) as error:
        where = _shown_url(app_settings().gateway_url)
        return {}, f"Cannot read the failure injection of the gateway at {where}: {_why(error)}."


def _call_gateway(method: str, path: str, **options: Any) -> httpx.Response:
    """A 2xx answer from the gateway to a request carrying the shop's API key; else an ``httpx.HTTPError``."""
    api_key = app_settings().gateway_api_key
    response = httpx.request(
        method,
        f"{app_settings().gateway_url}{path}",
        auth=BearerApiKey(api_key) if api_key else None,
        timeout=GATEWAY_SECONDS,
        **options,
    )
    response.raise_for_status()
    return response


def _shown_url(url: str) -> str:
    """``url`` as a visitor may see it: no ``user:password@``, query or fragment (where secrets hide)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _why(error: httpx.HTTPError | ValueError) -> str:
    # In our own words: httpx's messages quote the whole URL, credentials and all.
    if isinstance(error, httpx.HTTPStatusError):
        code = error.response.status_code
        return "it refused the shop's GATEWAY_API_KEY" if code == 401 else f"it answered {code}"
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {GATEWAY_SECONDS:g} s"
    if isinstance(error, httpx.TransportError):
        return "cannot connect; is it running?"
    return "its answer was not JSON" if isinstance(error, ValueError) else type(error).__name__
