"""The orders bounded context: the catalogue with its stock, and orders from placement to shipping.

Owns: ``products`` (price and stock: ``on_hand`` received, ``reserved`` sold), ``orders`` and
``order_lines``. An order points at the two tasks that screen it in parallel,
``fraud_check_task_id`` and ``stock_reservation_task_id``; ``IS NOT NULL`` on either means "being
processed right now" (see docs/architecture.md for the rule).

Modules: ``models`` (guarded transitions), ``services`` (use cases), ``tasks`` (the two screening
handlers and the repair of dangling pointers), ``screening`` (the join and the rejection), ``stock``
(reserve, release), ``fraud`` (pure screening rules), ``schemas`` and ``api`` (HTTP).

Publishes (``orders.events``): ``OrderReadyForPayment`` when both screening steps passed (exactly
once per order), ``OrderCancelled`` when an order is cancelled.

Consumes (called by the composition root's reactions): ``services.mark_paid`` (payment captured),
``services.mark_payment_failed`` (payment failed), ``services.mark_shipped`` (shipment dispatched), and
``services.destination_of`` (shipping asks where an order goes).
"""
