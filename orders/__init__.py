"""The orders bounded context: the catalogue with its stock, and orders from placement to shipping.

Owns
    ``products`` (price and stock: ``on_hand`` received, ``reserved`` sold), ``orders`` and
    ``order_lines``. An order points at the two tasks that screen it in parallel,
    ``fraud_check_task_id`` and ``stock_reservation_task_id``; ``IS NOT NULL`` on either means "being
    processed right now" (see docs/architecture.md for the rule).

Modules, as in every context
    ``models`` (guarded transitions; ``Order.for_customer`` makes a new one), ``services`` (use cases; it
    declares the two screening tasks ``place_order`` enqueues), ``tasks`` (their handlers and the repair
    of dangling pointers; imports ``services``, never the reverse), ``events``, ``schemas`` and ``api``
    (HTTP). Its own: ``screening`` (the join and the rejection), ``stock`` (reserve, release), ``fraud``
    (pure screening rules), ``access_tokens`` (the customer's key to an order).

Publishes (``events``, to the dispatcher in ``session.info[events.REACTIONS_KEY]``)
    ``OrderReadyForPayment`` when both screening steps passed (exactly once per order),
    ``OrderCancelled`` when an order is cancelled.

Consumes (through the composition root's reactions, calling ``services``)
    ``PaymentCaptured -> mark_paid``, ``PaymentFailed -> mark_payment_failed``,
    ``ShipmentDispatched -> mark_shipped``; and ``destination_of`` tells shipping where an order goes.

Knows other contexts only by ID and never imports them.
"""
