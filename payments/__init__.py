"""The payments bounded context: charging an order exactly once, and giving the money back when asked.

Owns
    The ``payments`` table: one payment per order, with its own gateway idempotency key
    (``payment-<payment id>``) and the IDs of the tasks working on it, ``processing_task_id`` (the charge)
    and ``refund_task_id`` (a refund, or a void of the key), each UNIQUE.

Modules, as in every context
    ``models`` (guarded transitions; ``Payment.for_order`` makes a new one), ``services`` (use cases; it
    declares the charge and refund tasks), ``tasks`` (their handlers, which ask the gateway and hand the
    answer to ``services``, and the repairs; imports ``services``, never the reverse), ``events``,
    ``schemas`` and ``api`` (HTTP, read-only). Its own: ``gateway_client`` (the payment provider, spoken
    to over HTTP only; the handlers find the client in ``session.info[tasks.GATEWAY_KEY]``).

Publishes (``events``, to the dispatcher in ``session.info[events.REACTIONS_KEY]``)
    ``PaymentCaptured``, ``PaymentFailed(reason)`` (declined, or the gateway stayed unreachable or refused
    the request) and ``PaymentRefunded``.

Consumes (through the composition root's reactions, calling ``services``)
    ``OrderReadyForPayment -> request_payment`` (idempotent per order) and
    ``OrderCancelled -> cancel_payment_for_order`` (stops a pending charge, refunds a captured one).

Guarantees, each proved in tests/integration/payments/ against the real gateway simulator's ledger: a
charge is captured at most once per payment whatever fails on the way (retries, timeouts either side of
the capture, duplicate deliveries, a crash before the commit); a payment that ends without a capture has
its key voided, so a late or unseen charge is refunded or refused; nothing stays pending behind a dead
task. Knows other contexts only by ID (``order_id``) and never imports them.
"""
