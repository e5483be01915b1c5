"""The composition root's wiring, in one place: what a task handler or a web request finds in its session.

The contexts import neither each other nor the shop, so what they need from outside reaches them through
``Session.info``: the reactions dispatcher, to which ``events.publish`` hands every event
(``shop.reactions``), and, where payments are charged, the payment gateway's client
(``payments.tasks.gateway``). Each key is a constant of the context that reads it; this module only fills
them in. Every session the shop opens is wired here: web requests (``shop.web.database``), task handlers
(``shop worker``, which ``shop demo`` runs), repairs run by ``shop queue check-references --repair``, and
the tests, which pass their own dispatcher (an ``EventRecorder``) or gateway client.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

import orders.events
import payments.events
import payments.tasks
import shipping.events
from payments.gateway_client import GatewayClient
from shop import reactions
from shop.config import Settings

React = Callable[[Session, Any], None]


def session_info(
    *, react: React = reactions.dispatch, gateway: GatewayClient | None = None
) -> dict[str, Any]:
    """The ``Session.info`` of a session the shop opens: the dispatcher, and the gateway client if given.

    Only task handlers call the gateway, so a web request's session has none. ``react`` stands in for the
    dispatcher in a test that wants to see what one context announced without the others reacting.
    """
    info: dict[str, Any] = {
        orders.events.REACTIONS_KEY: react,
        payments.events.REACTIONS_KEY: react,
        shipping.events.REACTIONS_KEY: react,
    }
    if gateway is not None:
        info[payments.tasks.GATEWAY_KEY] = gateway
    return info


def gateway_client(settings: Settings) -> GatewayClient:
    """The payment gateway's client for a worker's handlers (the caller closes it: it holds connections)."""
    return GatewayClient(
        settings.gateway_url, api_key=settings.gateway_api_key, timeout=settings.gateway_timeout_seconds
    )
