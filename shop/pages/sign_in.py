"""Signing in with the admin token (``/sign-in``), so that a browser may press the pages' buttons."""

from __future__ import annotations

import hmac

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from shop.pages import security
from shop.pages.common import render, settings

blueprint = Blueprint("sign_in", __name__, template_folder="templates")


@blueprint.get("/sign-in")
def sign_in() -> tuple[str, int]:
    """The token form (in demo mode there is nothing to sign in for, and the page says so)."""
    return render("sign_in.html", title="Sign in", configured=settings().admin_token is not None)


@blueprint.post("/sign-in")
def check_token() -> WerkzeugResponse | tuple[str, int]:
    """Keep proof of the token in a cookie when it matches ``SHOP_ADMIN_TOKEN``; a wrong one is a 403."""
    security.check_csrf()
    expected = settings().admin_token
    given = request.form.get("token", "")
    if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
        return render(
            "sign_in.html",
            403,
            title="Sign in",
            configured=expected is not None,
            notice="That is not the admin token.",
            notice_kind="error",
        )
    response = redirect(url_for("queue_dashboard.dashboard"), code=303)
    response.set_cookie(
        security.ADMIN_COOKIE,
        security.admin_proof(expected),
        max_age=security.COOKIE_MAX_AGE_SECONDS,
        httponly=True,
        samesite="Strict",
    )
    return response


@blueprint.post("/sign-out")
def sign_out() -> WerkzeugResponse:
    security.check_csrf()
    response = redirect(url_for("shop_front.shop"), code=303)
    response.delete_cookie(security.ADMIN_COOKIE)
    return response
