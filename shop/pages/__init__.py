"""The demo's web pages: watch the inverted pattern at work, in a browser.

Server-rendered Flask templates, one blueprint per page group:

- ``/``              the shop: place an order, place 50 random ones, the gateway's failure injection
- ``/orders``        orders with every task-ID column, linked to the task and coloured by its state
- ``/tasks/<id>``    the task explorer: a task's life, its errors, and the business rows pointing at it
- ``/queue``         the queue dashboard: depth, throughput, workers, dead tasks, dangling references
- ``/how-it-works``  the classic approach beside the inverted one, linked to the code that does it

The only script (``static/live.js``) refreshes the parts of a page marked ``data-live`` while work runs;
every file a page loads is served by this app, so the pages work with no internet. Every button is a
POST form with a CSRF token and, outside demo mode, needs a signed-in operator (``shop.pages.security``).
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, SecurityError

from shop.config import Settings
from shop.pages import (
    common,
    dashboard,
    explorer,
    how_it_works,
    order_list,
    security,
    shop_front,
    sign_in,
)


def init_app(app: Flask, settings: Settings) -> None:
    """Register every page group, sessions and CSRF protection, and the template helpers."""
    security.init_app(app, settings)
    sign_in.init_app(app, settings)
    app.jinja_env.globals.update(CSRF_FIELD=security.CSRF_FIELD)  # Flask-WTF adds ``csrf_token()``
    app.jinja_env.filters.update(
        customer_email=common.customer_email,
        short_id=common.short_id,
        when=common.when,
        money=common.money,
        seconds=common.seconds,
        ms=common.ms,
    )
    for module in (shop_front, order_list, explorer, dashboard, how_it_works, sign_in):
        app.register_blueprint(module.blueprint)

    @app.errorhandler(security.Refused)
    def refused(error: security.Refused) -> tuple[str, int, dict[str, str]]:
        page, status = common.render("refused.html", error.status, title=error.title, error=error)
        return page, status, error.headers

    @app.after_request
    def pages_are_never_cached(response: Response) -> Response:
        # A page shows live state; a stale copy from a cache would show a task running that finished.
        if request.blueprint in BLUEPRINTS and response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response


BLUEPRINTS = frozenset(
    {"shop_front", "order_list", "task_explorer", "queue_dashboard", "how_it_works", "sign_in"}
)


def http_error_as_page(error: HTTPException) -> tuple[str, int, list[tuple[str, str]]] | HTTPException:
    """An HTTP error (unknown page, wrong method, body too large) as a page in the layout, with its headers.

    A request for a host the app does not serve gets werkzeug's plain page: the layout's links cannot be
    built for a host that is not trusted.
    """
    if isinstance(error, SecurityError):
        return error
    page, status = common.render(
        "error.html", error.code or 500, title=error.name, explanation=error.description
    )
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    return page, status, headers
