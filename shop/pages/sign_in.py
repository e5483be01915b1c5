"""Signing in with an operator key (``/sign-in``): a browser may then see the pages and press their buttons.

A right key starts an operator session (``shop.access.operator_sessions``) whose ID goes into the signed
session cookie; signing out ends it in the database, so a copy of the cookie is worth nothing afterwards.
Wrong keys are counted per client address (``shop.access.sign_in_attempts``): after a few, every try is
refused for a while, the right key too.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, redirect, request, session, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from shop.access import operator_sessions
from shop.access.sign_in_attempts import SignInAttempts
from shop.config import Settings, app_settings
from shop.pages import security
from shop.pages.common import db, render

blueprint = Blueprint("sign_in", __name__, template_folder="templates")
log = logging.getLogger(__name__)
ATTEMPTS_KEY = "shop.sign_in_attempts"


def init_app(app: Flask, settings: Settings) -> None:
    """Give the app its own count of failed sign-ins (two apps never share one)."""
    app.extensions[ATTEMPTS_KEY] = SignInAttempts(settings.rate_limit_storage_uri)


@blueprint.get("/sign-in")
def sign_in() -> tuple[str, int]:
    """The key form (in demo mode there is nothing to sign in for, and the page says so)."""
    return render("sign_in.html", title="Sign in", configured=bool(app_settings().operator_keys))


@blueprint.post("/sign-in")
def check_key() -> WerkzeugResponse | tuple[str, int]:
    """Start an operator session when the key is one of ``SHOP_OPERATOR_KEYS``; a wrong one is a 403."""
    attempts: SignInAttempts = current_app.extensions[ATTEMPTS_KEY]
    address = request.remote_addr or "unknown"
    wait = attempts.seconds_until_allowed(address)
    if wait:
        raise security.Refused(
            429,
            "Too many attempts",
            f"This address gave wrong keys too often; try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    keys = app_settings().operator_keys
    fingerprint = keys.fingerprint_of(request.form.get("key", ""))
    if fingerprint is None:
        attempts.record_failure(address)
        log.warning("sign-in with a wrong key from %s", address)
        return render(
            "sign_in.html",
            403,
            title="Sign in",
            configured=bool(keys),
            notice="That is not an operator key.",
            notice_kind="error",
        )
    _end_current_session()  # a browser signing in again leaves no older session alive behind it
    session_id = operator_sessions.begin(db(), fingerprint)
    db().commit()
    session.clear()  # a new session for a new identity: nothing carried over from before sign-in
    session.permanent = True
    session[operator_sessions.COOKIE_FIELD] = str(session_id)
    log.info("operator signed in with key %s from %s", fingerprint, address)
    return redirect(url_for("queue_dashboard.dashboard"), code=303)


@blueprint.post("/sign-out")
def sign_out() -> WerkzeugResponse:
    """End the operator session for good, then forget it in this browser."""
    _end_current_session()
    session.clear()
    return redirect(url_for("sign_in.sign_in"), code=303)


def _end_current_session() -> None:
    session_id = operator_sessions.current_session_id()
    if session_id is not None:
        operator_sessions.end(db(), session_id)
        db().commit()
