"""Who may press the pages' buttons: CSRF protection for every form, and the admin token outside demo mode.

CSRF uses the double-submit cookie: each browser gets a random token in a cookie (``HttpOnly``,
``SameSite=Strict``) and every form repeats it in a hidden field; a POST whose field does not match its
cookie is refused. Another site can neither read the cookie nor make the browser send it along, so it
cannot forge a matching pair. No server-side secret or session store is needed, so every gunicorn
process accepts every other's forms.

Outside demo mode a POST also needs the admin token (``SHOP_ADMIN_TOKEN``): a person types it once on
``/sign-in`` and the browser keeps a cookie holding an HMAC of it (never the token itself). With no token
configured and no demo mode, the pages are read-only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, Response, g, request

from shop.config import Settings

CSRF_COOKIE = "shop_csrf"
CSRF_FIELD = "csrf_token"
ADMIN_COOKIE = "shop_admin"
COOKIE_MAX_AGE_SECONDS = 7 * 86_400


class Refused(Exception):  # noqa: N818 - reads as what happened to the request
    """A POST without a valid CSRF token or without the right to act; the page explains which."""

    def __init__(self, status: int, title: str, explanation: str) -> None:
        super().__init__(explanation)
        self.status = status
        self.title = title
        self.explanation = explanation


def init_app(app: Flask) -> None:
    """Hand every browser a CSRF cookie on its first page."""

    @app.after_request
    def set_csrf_cookie(response: Response) -> Response:
        token = g.pop("new_csrf_token", None)
        if token is not None:
            response.set_cookie(
                CSRF_COOKIE, token, max_age=COOKIE_MAX_AGE_SECONDS, httponly=True, samesite="Strict"
            )
        return response


def csrf_token() -> str:
    """The token this browser's forms carry (made now, and sent as a cookie, if it has none yet)."""
    existing = request.cookies.get(CSRF_COOKIE) or g.get("new_csrf_token")
    if existing:
        return str(existing)
    token = secrets.token_urlsafe(32)
    g.new_csrf_token = token
    return token


def check_csrf() -> None:
    """Refuse a form whose hidden token does not match its cookie (a forged or a stale form)."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    field = request.form.get(CSRF_FIELD, "")
    if not cookie or not field or not hmac.compare_digest(cookie.encode(), field.encode()):
        raise Refused(
            400,
            "The form has expired",
            "This form did not carry this browser's security token (it may come from another site, or "
            "from before cookies were cleared). Reload the page and try again.",
        )


def admin_proof(token: str) -> str:
    """What the admin cookie holds: an HMAC of the token, so the cookie never reveals the token."""
    return hmac.new(token.encode(), b"inverted-shop admin pages", hashlib.sha256).hexdigest()


def is_operator(settings: Settings) -> bool:
    """Whether this browser signed in with the admin token: the one who may see what only staff should.

    Demo mode does not make anyone an operator: it lets anyone press the buttons, but what an operator
    alone sees (a traceback's paths and hosts) stays behind the admin cookie.
    """
    if settings.admin_token is None:
        return False
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), admin_proof(settings.admin_token).encode())


def may_act(settings: Settings) -> bool:
    """Whether this request may change anything: always in demo mode, else only an operator."""
    return settings.demo_mode or is_operator(settings)


def check_may_act(settings: Settings) -> None:
    """Refuse a change from a browser that has not signed in (outside demo mode)."""
    if may_act(settings):
        return
    if settings.admin_token is None:
        raise Refused(
            403,
            "These pages are read-only here",
            "No admin token is configured and demo mode is off, so nobody may act through the pages. "
            "Set SHOP_ADMIN_TOKEN (or SHOP_DEMO_MODE=1 on a machine of your own) and restart the web app.",
        )
    raise Refused(403, "Sign in first", "Changing anything needs the admin token: sign in on /sign-in.")


def check_post(settings: Settings) -> None:
    """Every POST of the pages: CSRF first (a forged request learns nothing), then the right to act."""
    check_csrf()
    check_may_act(settings)
