"""shop.bootstrap: every session the shop opens carries what each context reads, under that context's key."""

from __future__ import annotations

import orders.events
import payments.events
import payments.tasks
import shipping.events
from payments.gateway_client import GatewayClient
from shop import bootstrap, reactions
from tests.support.domain import EventRecorder

CONTEXT_REACTIONS_KEYS = [
    orders.events.REACTIONS_KEY,
    payments.events.REACTIONS_KEY,
    shipping.events.REACTIONS_KEY,
]


def test_every_context_finds_the_reactions_dispatcher_under_its_own_key() -> None:
    info = bootstrap.session_info()
    assert all(info[key] is reactions.dispatch for key in CONTEXT_REACTIONS_KEYS)
    assert payments.tasks.GATEWAY_KEY not in info  # a web request never calls the gateway


def test_a_test_gives_every_context_its_own_recorder_and_the_handlers_a_gateway_client() -> None:
    recorder = EventRecorder()
    with GatewayClient("http://gateway.test") as client:
        info = bootstrap.session_info(react=recorder, gateway=client)
    assert all(info[key] is recorder for key in CONTEXT_REACTIONS_KEYS)
    assert info[payments.tasks.GATEWAY_KEY] is client
