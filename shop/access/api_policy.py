"""The API's access rules: one line per endpoint, and operators only for whatever is not named.

A request to a context's endpoint is checked before its view runs (``enforce``): the rule says who may
call it, the ``Authorization: Bearer`` header says who is calling. No credential where one is needed is
a 401 with ``WWW-Authenticate``; a credential that does not open this resource is a 403. Demo mode lets
every request through. The same rules are written into the OpenAPI document (``DocumentedAccess``), so
Swagger UI and generated clients know which token each operation takes.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apispec import APISpec, BasePlugin
from flask import Flask, Response, g, request
from flask_smorest import abort
from werkzeug.routing import Rule

from orders.access_tokens import app_secret_keys, grants_access
from shop.access import operator_sessions
from shop.access.redaction import mask_emails
from shop.config import Settings

log = logging.getLogger(__name__)


class Access(enum.StrEnum):
    """Who may call an endpoint."""

    ANYONE = "anyone"
    ORDER_HOLDER = "order_holder"  # the order's access token (the ``order_id`` in the path), or an operator
    OPERATOR = "operator"


RULES: Mapping[str, Access] = {
    "orders.list_products": Access.ANYONE,
    "orders.place_order": Access.ANYONE,
    "orders.get_order": Access.ORDER_HOLDER,
    "orders.cancel_order": Access.ORDER_HOLDER,
    "orders.delete_order": Access.ORDER_HOLDER,
    "payments.get_order_payment": Access.ORDER_HOLDER,
    "shipping.get_order_shipment": Access.ORDER_HOLDER,
}
GUARDED_BLUEPRINTS = frozenset({"orders", "payments", "shipping"})  # the API docs and assets are public
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPERATOR_SCHEME = "operatorKey"
ORDER_SCHEME = "orderToken"


@dataclass(frozen=True)
class Caller:
    """Who sent this request, as far as its credentials show."""

    operator: bool = False
    order_holder: bool = False  # holds the token of the order named in the path
    presented_credential: bool = False


def rule_for(endpoint: str | None) -> Access | None:
    """The rule of a context's endpoint (operators only unless named); None outside the contexts."""
    if endpoint is None or endpoint.partition(".")[0] not in GUARDED_BLUEPRINTS:
        return None
    return RULES.get(endpoint, Access.OPERATOR)


def init_app(app: Flask, settings: Settings) -> None:
    """Check every API request against its rule, and mask customer emails for those who may not read them."""

    @app.before_request
    def enforce() -> None:
        access = rule_for(request.endpoint)
        if access is None:
            return
        caller = identify(settings)
        g.api_caller = caller
        if access is Access.ANYONE or settings.demo_mode or caller.operator:
            return
        if access is Access.ORDER_HOLDER and caller.order_holder:
            return
        if access is Access.OPERATOR and not settings.operator_keys:
            abort(403, message="No operator keys are configured here (SHOP_OPERATOR_KEYS), so nobody may.")
        if not caller.presented_credential:
            wanted = (
                "the order's access token or an operator key"
                if access is Access.ORDER_HOLDER
                else ("an operator key")
            )
            abort(
                401,
                message=f"This needs {wanted}: send it as 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="inverted-shop"'},
            )
        abort(403, message="These credentials do not open this resource.")

    @app.after_request
    def mask_customer_emails(response: Response) -> Response:
        access = rule_for(request.endpoint)
        caller: Caller | None = g.get("api_caller")
        if access in (None, Access.ANYONE) or caller is None or caller.operator or caller.order_holder:
            return response
        if not response.is_json or b"customer_email" not in response.get_data():
            return response
        response.set_data(json.dumps(mask_emails(response.get_json())))
        return response


def warn_if_nobody_may_operate(settings: Settings) -> None:
    """Say at start-up, in the log, that a web app without operator keys lets no operator in."""
    if not settings.demo_mode and not settings.operator_keys:
        log.warning(
            "SHOP_OPERATOR_KEYS is empty and demo mode is off: the API's operator endpoints answer 403 and "
            "nobody can sign in to the pages; customers can still place, read and cancel their own orders"
        )


def identify(settings: Settings) -> Caller:
    """Read the request's credentials: a bearer token (an operator key or an order's token), or, for
    reading only, a signed-in operator's page session (so the pages' links to the API open)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        if settings.operator_keys.fingerprint_of(token) is not None:
            return Caller(operator=True, presented_credential=True)
        order_id = (request.view_args or {}).get("order_id")
        holds = isinstance(order_id, uuid.UUID) and grants_access(token, order_id, app_secret_keys())
        return Caller(order_holder=holds, presented_credential=True)
    if request.method in SAFE_METHODS and operator_sessions.signed_in(settings):
        return Caller(operator=True, presented_credential=True)
    return Caller()


class DocumentedAccess(BasePlugin):
    """Writes each operation's rule into the OpenAPI document as its ``security`` and its 401/403."""

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        spec.components.security_scheme(
            OPERATOR_SCHEME,
            {
                "type": "http",
                "scheme": "bearer",
                "description": "One of the keys in SHOP_OPERATOR_KEYS: lists, every order, admin actions.",
            },
        )
        spec.components.security_scheme(
            ORDER_SCHEME,
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The access_token that placing the order answered with: that order only.",
            },
        )

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        url_rule: Rule | None = kwargs.get("rule")
        access = rule_for(url_rule.endpoint if url_rule is not None else None)
        if access is None or operations is None:
            return
        for operation in operations.values():
            if access is Access.ANYONE:
                operation["security"] = []
                continue
            schemes: list[dict[str, list[str]]] = [{OPERATOR_SCHEME: []}]
            if access is Access.ORDER_HOLDER:
                schemes.insert(0, {ORDER_SCHEME: []})
            operation["security"] = schemes
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", {"description": "No credential: send a bearer token."})
            responses.setdefault("403", {"description": "This credential does not open this resource."})
