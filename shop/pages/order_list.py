"""The Orders page (``/orders``): every order with its task-ID columns, each a link to the task, coloured
by the task's state. Filters: being processed, waiting for shipping, failed."""

from __future__ import annotations

from flask import Blueprint, request

from orders.models import FINAL_ORDER_STATES
from shop.pages import readings
from shop.pages.common import db, render

blueprint = Blueprint("order_list", __name__, template_folder="templates")

PAGE_SIZE = 50
FILTER_LABELS = {
    readings.OrderFilter.ALL: "All",
    readings.OrderFilter.BEING_PROCESSED: "Being processed",
    readings.OrderFilter.WAITING_FOR_SHIPPING: "Waiting for shipping",
    readings.OrderFilter.FAILED: "Failed",
}


@blueprint.get("/orders")
def orders() -> tuple[str, int]:
    """The newest 50 orders matching the filter; an unknown filter shows every order, and says so."""
    raw = request.args.get("show", readings.OrderFilter.ALL.value)
    try:
        chosen = readings.OrderFilter(raw)
        notice = None
    except ValueError:
        chosen = readings.OrderFilter.ALL
        notice = f"There is no filter {raw[:40]!r}: showing every order."
    session = db()
    rows = readings.order_rows(session, readings.find_orders(session, chosen, limit=PAGE_SIZE))
    busy = any(
        row.order.order_state not in FINAL_ORDER_STATES
        or any(task.state in ("pending", "running") for task in row.tasks)
        for row in rows
    )
    return render(
        "orders.html",
        title="Orders",
        rows=rows,
        chosen=chosen,
        filters=FILTER_LABELS,
        busy=busy,
        refresh_seconds=2,
        notice=notice,
        notice_kind="error",
    )
