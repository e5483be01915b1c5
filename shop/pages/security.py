"""Who may see the pages and press their buttons: operators, or anyone in demo mode; every form checked.

Outside demo mode the pages that show the shop's data (the shop, orders, tasks, the queue) are for
operators only: a visitor is sent to ``/sign-in`` (``guard_pages``). Only "How it works", the source view
and the sign-in page are public. Every POST outside ``/api`` is checked first (``guard_forms``):

1. **Same origin.** A browser sends ``Origin`` with every cross-site POST (``Referer`` where it sends no
   ``Origin``); a POST whose origin (scheme, host and port) is not this request's own is refused.
2. **CSRF token.** Flask-WTF's ``CSRFProtect``: each form carries a token signed with the app's secret key
   and bound to this browser's session, so a token taken from another browser, or forged, is refused.

The API is exempt: it changes data only for a bearer token (``shop.access.api_policy``), which a browser
never attaches to a forged request. An operator's session (``shop.access.operator_sessions``) is made on
``/sign-in``. The session cookie is Flask's, signed with ``SHOP_SECRET_KEY``: ``HttpOnly``,
``SameSite=Lax``, ``Secure`` whenever the request came over HTTPS, and it expires with the session.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Request, redirect, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response as WerkzeugResponse

from shop.access import operator_sessions
from shop.config import Settings

CSRF_FIELD = "csrf_token"  # the hidden field every form carries (Flask-WTF's name)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The pages that show the shop's data: outside demo mode, operators' only.
OPERATOR_PAGES = frozenset({"shop_front", "order_list", "task_explorer", "queue_dashboard"})

csrf = CSRFProtect()


class Refused(Exception):  # noqa: N818 - reads as what happened to the request
    """A POST without a valid CSRF token or without the right to act; the page explains which."""

    def __init__(
        self, status: int, title: str, explanation: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(explanation)
        self.status = status
        self.title = title
        self.explanation = explanation
        self.headers = headers or {}


class SessionCookieSecureOverHttps(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with ``Secure`` set whenever this request came over HTTPS.

    Flask's own setting is one value for every request; the demo is served over plain HTTP, a deployment
    behind TLS (with the proxy's ``X-Forwarded-Proto`` trusted) over HTTPS, and one app serves both.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def init_app(app: Flask, settings: Settings) -> None:
    """Sessions, CSRF protection, the same-origin check, and the operators-only pages."""
    app.config.update(
        SESSION_COOKIE_NAME="shop_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=operator_sessions.LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # ``guard_forms`` decides which requests are checked: all but the API
        WTF_CSRF_TIME_LIMIT=int(operator_sessions.LIFETIME.total_seconds()),
    )
    app.session_interface = SessionCookieSecureOverHttps()
    csrf.init_app(app)

    @app.before_request
    def guard_forms() -> None:
        if request.method in UNSAFE_METHODS and not request.path.startswith("/api/"):
            check_same_origin(request)
            try:
                csrf.protect()
            except CSRFError:
                raise Refused(
                    400,
                    "The form has expired",
                    "This form did not carry this browser's security token (it may come from another "
                    "site, or from before the session ended). Reload the page and try again.",
                ) from None

    @app.before_request
    def guard_pages() -> WerkzeugResponse | None:
        if settings.demo_mode or request.blueprint not in OPERATOR_PAGES or is_operator(settings):
            return None
        if request.endpoint == "shop_front.static":
            return None  # the style sheet and script every page, the sign-in page too, needs
        if request.method in UNSAFE_METHODS:
            check_may_act(settings)  # refuses, saying why
        return redirect(url_for("sign_in.sign_in"), code=303)


def check_same_origin(incoming: Request) -> None:
    """Refuse a state-changing request that a page of another site made the browser send.

    The origin compared is scheme, host and port, as browsers define it; behind a proxy, the proxy must
    pass the browser's ``Host`` on whole (``$http_host``) and its scheme (``X-Forwarded-Proto``).
    """
    claimed = incoming.headers.get("Origin") or incoming.headers.get("Referer")
    cross_site = incoming.headers.get("Sec-Fetch-Site") == "cross-site"
    if claimed is None and not cross_site:
        return  # not sent by a browser on another site's behalf (curl, a test client): the token decides
    origin = urlsplit(claimed or "")
    own = (incoming.scheme, incoming.host.lower())
    if cross_site or claimed == "null" or (origin.scheme, origin.netloc.lower()) != own:
        raise Refused(
            403,
            "Refused: sent from another site",
            "This request came from a page of another site. Use the shop's own pages to make changes.",
        )


def is_operator(settings: Settings) -> bool:
    """Whether this browser is signed in as an operator: who may see what only staff should (customers'
    emails, tracebacks' paths and hosts). Demo mode lets anyone press the buttons, but makes nobody one."""
    return operator_sessions.signed_in(settings)


def may_act(settings: Settings) -> bool:
    """Whether this request may change anything: anyone in demo mode, else a signed-in operator."""
    return settings.demo_mode or is_operator(settings)


def check_may_act(settings: Settings) -> None:
    """Refuse a change from a browser that has not signed in (outside demo mode)."""
    if may_act(settings):
        return
    if not settings.operator_keys:
        raise Refused(
            403,
            "Nobody may act here",
            "No operator key is configured and demo mode is off, so nobody may sign in and act. "
            "Set SHOP_OPERATOR_KEYS (make a key with `shop operator-key`), or SHOP_DEMO_MODE=1 on a machine "
            "of your own, and restart the web app.",
        )
    raise Refused(403, "Sign in first", "Changing anything needs an operator key: sign in on /sign-in.")


def check_post(settings: Settings) -> None:
    """Every button of the pages: the form passed its CSRF check already; may this browser act?

    Outside demo mode ``guard_pages`` refuses a visitor before any view runs; this says it again where the
    change is made, so a view moved out of ``OPERATOR_PAGES`` stays guarded.
    """
    check_may_act(settings)
