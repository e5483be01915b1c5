"""GatewayClient against httpx.MockTransport: every answer and every transport failure maps to one outcome."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import httpx
import pytest

from payments.gateway_client import (
    BearerApiKey,
    Captured,
    Declined,
    GatewayClient,
    GatewayError,
    GatewayRejected,
    GatewayTimeout,
    GatewayUnavailable,
    RefundOutcome,
)

Handler = Callable[[httpx.Request], httpx.Response]
CHARGE_ID = "ch_7a1c0ffee"
API_KEY = "CRUNCHY-ARMCHAIR-gateway-key-for-tests-only"


def client_answering(handler: Handler, base_url: str = "http://gateway.test") -> GatewayClient:
    return GatewayClient(base_url, api_key=API_KEY, transport=httpx.MockTransport(handler))


def recording(seen: list[httpx.Request], answer: httpx.Response) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return handler


def answer(status_code: int, body: object = None) -> Handler:
    return lambda request: httpx.Response(status_code, json=body)


def failing_with(error: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("simulated", request=request)

    return handler


def charge_armchair(client: GatewayClient) -> Captured | Declined:
    return client.charge(
        idempotency_key="order-17-payment-1", amount_cents=12_900, currency="EUR", reference="ORDER-17"
    )


def test_a_charge_posts_the_key_as_a_header_and_the_amount_as_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": CHARGE_ID, "status": "captured"})

    with client_answering(handler) as client:
        charge_armchair(client)

    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/charges")
    assert request.headers["Idempotency-Key"] == "order-17-payment-1"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(request.content) == {"amount_cents": 12_900, "currency": "EUR", "reference": "ORDER-17"}


def test_the_api_key_goes_as_a_bearer_token_even_when_the_url_holds_a_password() -> None:
    seen: list[httpx.Request] = []
    handler = recording(seen, httpx.Response(201, json={"id": CHARGE_ID, "status": "captured"}))

    with client_answering(handler, base_url="http://clerk:s3cret@gateway.test") as client:
        charge_armchair(client)

    assert seen[0].headers["Authorization"] == f"Bearer {API_KEY}"


def test_without_a_key_no_credentials_are_sent_and_the_401_is_our_mistake() -> None:
    seen: list[httpx.Request] = []
    handler = recording(seen, httpx.Response(401, json={"error": "unauthorized"}))

    with (
        GatewayClient("http://gateway.test", transport=httpx.MockTransport(handler)) as client,
        pytest.raises(GatewayRejected, match="answered 401"),
    ):
        charge_armchair(client)

    assert "Authorization" not in seen[0].headers


def test_the_key_never_shows_in_a_repr() -> None:
    assert API_KEY not in repr(BearerApiKey(API_KEY))


@pytest.mark.parametrize("status_code", [200, 201])
def test_a_captured_answer_is_captured(status_code: int) -> None:
    client = client_answering(answer(status_code, {"id": CHARGE_ID, "status": "captured"}))

    assert charge_armchair(client) == Captured(charge_id=CHARGE_ID)


@pytest.mark.parametrize(
    ("body", "outcome"),
    [
        ({"id": CHARGE_ID, "status": "declined", "decline_reason": "card_declined"}, "card_declined"),
        ({"id": CHARGE_ID, "status": "voided", "decline_reason": None}, "voided"),
        (None, "declined"),
    ],
    ids=["with-reason", "voided", "without-body"],
)
def test_a_402_is_declined_with_its_reason(body: object, outcome: str) -> None:
    client = client_answering(answer(402, body))

    assert charge_armchair(client) == Declined(reason=outcome)


@pytest.mark.parametrize("status_code", [429, 500, 502, 503])
def test_a_server_error_or_throttling_means_unavailable(status_code: int) -> None:
    client = client_answering(answer(status_code, {"error": "temporarily_unavailable"}))

    with pytest.raises(GatewayUnavailable):
        charge_armchair(client)


def test_a_504_means_the_charge_may_have_happened() -> None:
    client = client_answering(answer(504, {"error": "timed_out"}))

    with pytest.raises(GatewayTimeout):
        charge_armchair(client)


@pytest.mark.parametrize("status_code", [400, 401, 404, 409, 422])
def test_any_other_4xx_is_our_mistake_and_not_worth_retrying(status_code: int) -> None:
    client = client_answering(answer(status_code, {"errors": {"Idempotency-Key": ["reused"]}}))

    with pytest.raises(GatewayRejected) as raised:
        charge_armchair(client)

    assert not isinstance(raised.value, GatewayError)
    assert str(status_code) in str(raised.value)


@pytest.mark.parametrize("body", [None, "captured", {"status": "captured"}, {"status": "pending"}], ids=repr)
def test_a_success_that_cannot_be_read_is_a_retryable_gateway_error(body: object) -> None:
    client = client_answering(answer(201, body))

    with pytest.raises(GatewayError) as raised:
        charge_armchair(client)

    assert type(raised.value) is GatewayError


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ReadTimeout, GatewayTimeout),
        (httpx.WriteTimeout, GatewayTimeout),
        (httpx.ReadError, GatewayTimeout),
        (httpx.RemoteProtocolError, GatewayTimeout),
        (httpx.ConnectError, GatewayUnavailable),
        (httpx.ConnectTimeout, GatewayUnavailable),
        (httpx.PoolTimeout, GatewayUnavailable),
    ],
    ids=lambda value: value.__name__,
)
def test_a_transport_failure_is_a_timeout_once_the_request_may_have_been_sent(
    error: type[httpx.TransportError], outcome: type[GatewayError]
) -> None:
    client = client_answering(failing_with(error))

    with pytest.raises(outcome):
        charge_armchair(client)


def test_a_refused_connection_means_unavailable() -> None:
    with socket.socket() as placeholder:  # a port nobody listens on once it is closed
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]

    with GatewayClient(f"http://127.0.0.1:{port}", timeout=2.0) as client, pytest.raises(GatewayUnavailable):
        charge_armchair(client)


def test_a_refund_posts_its_own_key_and_the_charge_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "re_1", "status": "refunded"})

    client = client_answering(handler)
    outcome = client.refund(idempotency_key="order-17-refund-1", charge_idempotency_key="order-17-payment-1")

    assert outcome == RefundOutcome(status="refunded", refund_id="re_1")
    (request,) = seen
    assert (request.method, request.url.path) == ("POST", "/v1/refunds")
    assert request.headers["Idempotency-Key"] == "order-17-refund-1"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert json.loads(request.content) == {"charge_idempotency_key": "order-17-payment-1"}


@pytest.mark.parametrize(
    ("status_code", "body", "outcome"),
    [
        (200, {"id": "re_1", "status": "refunded"}, RefundOutcome("refunded", "re_1")),
        (200, {"id": None, "status": "voided"}, RefundOutcome("voided", None)),
        (200, {"id": None, "status": "nothing_to_refund"}, RefundOutcome("nothing_to_refund", None)),
    ],
    ids=["refunded", "voided", "nothing-to-refund"],
)
def test_each_refund_answer_is_its_outcome(status_code: int, body: object, outcome: RefundOutcome) -> None:
    client = client_answering(answer(status_code, body))

    assert client.refund(idempotency_key="r-1", charge_idempotency_key="p-1") == outcome


@pytest.mark.parametrize(
    ("status_code", "raised"),
    [(422, GatewayRejected), (503, GatewayUnavailable), (504, GatewayTimeout), (201, GatewayError)],
)
def test_a_refund_fails_the_way_a_charge_does(status_code: int, raised: type[Exception]) -> None:
    client = client_answering(answer(status_code, {"status": "mystery"}))

    with pytest.raises(raised):
        client.refund(idempotency_key="r-1", charge_idempotency_key="p-1")


def test_a_refund_that_timed_out_is_a_gateway_timeout() -> None:
    client = client_answering(failing_with(httpx.ReadTimeout))

    with pytest.raises(GatewayTimeout):
        client.refund(idempotency_key="r-1", charge_idempotency_key="p-1")
