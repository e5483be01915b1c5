"""The payments context's client for the payment gateway: our own copy of its HTTP contract.

It imports nothing from the simulator: a consumer keeps its own copy of the contract it consumes, and
the real provider would not ship us its code either. Every call carries the caller's idempotency key
and is tried once; the task queue retries. What a caller may conclude from each outcome:

- ``Captured`` / ``Declined``: final. Asking again with the same key gives the same answer.
- ``GatewayUnavailable`` (a 5xx other than 504, a 429, no connection): the charge did not happen;
  retrying with the same key is safe.
- ``GatewayTimeout`` (no answer in time, the connection dropped mid-answer, a 504): the charge may or
  may not have happened. Only a retry with the same key tells, so the key must not be given up.
- ``GatewayRejected`` (a 4xx other than a decline): our request is wrong; retrying cannot help. A 401
  is one: the API key (``GATEWAY_API_KEY``) is missing or not the gateway's.
- a plain ``GatewayError``: a success we cannot read. Treat it as a timeout: retry with the same key.

A 504 counts as a timeout, not as unavailability: it says that something between us and the provider
stopped waiting, not that the provider did nothing.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

IDEMPOTENCY_KEY = "Idempotency-Key"
REFUND_STATUSES = ("refunded", "voided", "nothing_to_refund")


@dataclass(frozen=True)
class Captured:
    """The money is taken; ``charge_id`` is the gateway's ID for the charge."""

    charge_id: str


@dataclass(frozen=True)
class Declined:
    """The gateway said no (``insufficient_funds``, ``card_declined``, ..., or ``voided``)."""

    reason: str


ChargeOutcome = Captured | Declined


class GatewayError(Exception):
    """Retrying with the same idempotency key is safe and may succeed."""


class GatewayUnavailable(GatewayError):  # noqa: N818 - the contract's names
    """5xx, 429 or no connection: the charge did not happen."""


class GatewayTimeout(GatewayError):  # noqa: N818 - the contract's names
    """No answer in time: the charge may or may not have happened; only a retry with the same key tells."""


class GatewayRejected(Exception):  # noqa: N818 - the contract's names
    """A 4xx other than a decline: our request is wrong, retrying cannot help."""


@dataclass(frozen=True)
class RefundOutcome:
    """What a refund request did; ``refund_id`` is set when money went back."""

    status: str  # "refunded" | "voided" | "nothing_to_refund"
    refund_id: str | None


class BearerApiKey(httpx.Auth):
    """Sends the gateway's API key on every request as ``Authorization: Bearer <key>``.

    An ``httpx.Auth`` rather than a default header: httpx would replace a header with Basic credentials
    from a ``user:password@`` in the base URL. Its repr hides the key, so no log line can show it.
    """

    def __init__(self, api_key: str) -> None:
        self._authorization = f"Bearer {api_key}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._authorization
        yield request

    def __repr__(self) -> str:
        return "BearerApiKey(<hidden>)"


class GatewayClient:
    """Talks to the gateway at ``base_url``; one instance may be shared by threads (httpx.Client is).

    Every request carries ``api_key``; without one the gateway answers 401 (``GatewayRejected``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        auth = BearerApiKey(api_key) if api_key else None
        self._http = httpx.Client(base_url=base_url, auth=auth, timeout=timeout, transport=transport)

    def charge(
        self, *, idempotency_key: str, amount_cents: int, currency: str, reference: str
    ) -> ChargeOutcome:
        """Charge once per ``idempotency_key``; see the module docstring for what each outcome means."""
        body = {"amount_cents": amount_cents, "currency": currency, "reference": reference}
        response = self._post("/v1/charges", idempotency_key, body)
        if response.status_code == 402 or response.is_success:
            answer = _json_object(response)
            status = answer.get("status")
            if status == "captured" and response.is_success and isinstance(answer.get("id"), str):
                return Captured(charge_id=answer["id"])
            if status == "voided":
                return Declined(reason="voided")
            if status == "declined" or response.status_code == 402:
                reason = answer.get("decline_reason")
                return Declined(reason=reason if isinstance(reason, str) and reason else "declined")
            raise GatewayError(f"unreadable charge answer {response.status_code}: {response.text[:200]!r}")
        raise _failure(response)

    def refund(self, *, idempotency_key: str, charge_idempotency_key: str) -> RefundOutcome:
        """Refund in full the charge made under ``charge_idempotency_key``, or void it if it never came."""
        response = self._post(
            "/v1/refunds", idempotency_key, {"charge_idempotency_key": charge_idempotency_key}
        )
        if not response.is_success:
            raise _failure(response)
        answer = _json_object(response)
        status = answer.get("status")
        if status not in REFUND_STATUSES:
            raise GatewayError(f"unreadable refund answer {response.status_code}: {response.text[:200]!r}")
        refund_id = answer.get("id") if status == "refunded" else None
        return RefundOutcome(status=status, refund_id=refund_id if isinstance(refund_id, str) else None)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _post(self, path: str, idempotency_key: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self._http.post(path, json=body, headers={IDEMPOTENCY_KEY: idempotency_key})
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError) as error:
            # The request never left: nothing can have happened at the gateway.
            raise GatewayUnavailable(f"cannot reach the gateway: {error!r}") from error
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as error:
            raise GatewayRejected(f"cannot send the request: {error!r}") from error
        except httpx.TransportError as error:
            # Sent, but no (complete) answer: a read or write timeout, a dropped connection.
            raise GatewayTimeout(f"no answer from the gateway: {error!r}") from error


def _failure(response: httpx.Response) -> Exception:
    """The exception for an answer that is neither a success nor a decline."""
    summary = f"{response.request.method} {response.request.url.path} answered {response.status_code}"
    if response.status_code == 504:
        return GatewayTimeout(f"{summary}: the gateway timed out")
    if response.status_code == 429 or response.is_server_error:
        return GatewayUnavailable(f"{summary}: {response.text[:200]}")
    return GatewayRejected(f"{summary}: {response.text[:500]}")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
