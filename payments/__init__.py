"""The payments bounded context: charging an order exactly once, and giving the money back when asked.

Owns the ``payments`` table: one payment per order, with its own gateway idempotency key
(``payment-<payment id>``) and the IDs of the tasks working on it, ``processing_task_id`` (the charge)
and ``refund_task_id`` (a refund, or a void of the key), each UNIQUE.

Publishes (``payments.events``): ``PaymentCaptured``, ``PaymentFailed(reason)`` (declined, or the gateway
stayed unreachable or refused the request) and ``PaymentRefunded``.

Consumes nothing directly; the composition root calls ``services.request_payment`` when an order is
ready for payment and ``services.cancel_payment_for_order`` when one is cancelled, and puts the gateway
client in ``session.info[tasks.GATEWAY_KEY]`` for the handlers (``tasks.gateway``). Talks to the payment
provider over HTTP only (``payments.gateway_client``).

Guarantees, each proved in tests/integration/payments/ against the real gateway simulator's ledger: a
charge is captured at most once per payment whatever fails on the way (retries, timeouts either side of
the capture, duplicate deliveries, a crash before the commit); a payment that ends without a capture has
its key voided, so a late or unseen charge is refunded or refused; nothing stays pending behind a dead
task.
"""
