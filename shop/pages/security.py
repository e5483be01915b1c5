"""Who may press the pages' buttons: every form CSRF-checked, and a signed-in operator outside demo mode.

Every POST outside ``/api`` is checked before its view runs (``guard_forms``), cheapest refusal first:

1. **Same origin.** A browser sends ``Origin`` with every cross-site POST (``Referer`` where it sends no
   ``Origin``); a POST that names another site is refused before anything else is read.
2. **CSRF token.** Flask-WTF's ``CSRFProtect``: each form carries a token signed with the app's secret key
   and bound to this browser's session, so a token taken from another browser, forged, or older than the
   session is refused.

The API is exempt: it changes data only for a bearer token (``shop.access.api_policy``), which a browser
never attaches to a forged request. Outside demo mode a button also needs an operator's session
(``shop.access.operator_sessions``, made on ``/sign-in``); without operator keys the pages are read-only.

The session cookie is Flask's, signed with ``SHOP_SECRET_KEY``: ``HttpOnly``, ``SameSite=Lax``, ``Secure``
whenever the request came over HTTPS, and it expires with the operator's session.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Request, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFError, CSRFProtect

from shop.access import operator_sessions
from shop.config import Settings

CSRF_FIELD = "csrf_token"  # the hidden field every form carries (Flask-WTF's name)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN_ATTEMPTS = "5 per minute; 30 per hour"  # per client address: a 43-character key is not guessed

csrf = CSRFProtect()


class Refused(Exception):  # noqa: N818 - reads as what happened to the request
    """A POST without a valid CSRF token or without the right to act; the page explains which."""

    def __init__(self, status: int, title: str, explanation: str) -> None:
        super().__init__(explanation)
        self.status = status
        self.title = title
        self.explanation = explanation


class SessionCookieSecureOverHttps(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with ``Secure`` set whenever this request came over HTTPS.

    Flask's own setting is one value for every request; the demo is served over plain HTTP, a deployment
    behind TLS (with the proxy's ``X-Forwarded-Proto`` trusted) over HTTPS, and one app serves both.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def init_app(app: Flask, settings: Settings) -> Limiter:
    """Sessions, CSRF protection and the same-origin check; returns the app's rate limiter.

    The limiter is the app's own (not a module-level one), so two apps never share their counts.
    """
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
    limiter = Limiter(
        get_remote_address, app=app, storage_uri=settings.rate_limit_storage_uri, headers_enabled=True
    )

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

    return limiter


def check_same_origin(incoming: Request) -> None:
    """Refuse a state-changing request that a page of another site made the browser send."""
    claimed = incoming.headers.get("Origin") or incoming.headers.get("Referer")
    cross_site = incoming.headers.get("Sec-Fetch-Site") == "cross-site"
    if claimed is None and not cross_site:
        return  # not sent by a browser on another site's behalf (curl, a test client): the token decides
    if cross_site or claimed == "null" or urlsplit(claimed).netloc != incoming.host:
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
            "These pages are read-only here",
            "No operator key is configured and demo mode is off, so nobody may act through the pages. "
            "Set SHOP_OPERATOR_KEYS (make a key with `shop operator-key`), or SHOP_DEMO_MODE=1 on a machine "
            "of your own, and restart the web app.",
        )
    raise Refused(403, "Sign in first", "Changing anything needs an operator key: sign in on /sign-in.")


def check_post(settings: Settings) -> None:
    """Every button of the pages: the form passed its CSRF check already; may this browser act?"""
    check_may_act(settings)
