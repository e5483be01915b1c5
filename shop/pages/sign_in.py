"""Signing in with an operator key (``/sign-in``), so that a browser may press the pages' buttons.

A right key starts an operator session (``shop.access.operator_sessions``) whose ID goes into the signed
session cookie; signing out ends it in the database, so a copy of the cookie is worth nothing afterwards.
Attempts are limited per client address.
"""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, request, session, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from shop.access import operator_sessions
from shop.pages.common import db, render, settings

blueprint = Blueprint("sign_in", __name__, template_folder="templates")
log = logging.getLogger(__name__)


@blueprint.get("/sign-in")
def sign_in() -> tuple[str, int]:
    """The key form (in demo mode there is nothing to sign in for, and the page says so)."""
    return render("sign_in.html", title="Sign in", configured=bool(settings().operator_keys))


@blueprint.post("/sign-in")
def check_key() -> WerkzeugResponse | tuple[str, int]:
    """Start an operator session when the key is one of ``SHOP_OPERATOR_KEYS``; a wrong one is a 403.

    Attempts are limited per client address (``security.SIGN_IN_ATTEMPTS``, applied in ``shop.pages``).
    """
    keys = settings().operator_keys
    fingerprint = keys.fingerprint_of(request.form.get("key", ""))
    if fingerprint is None:
        log.warning("sign-in refused from %s", request.remote_addr)
        return render(
            "sign_in.html",
            403,
            title="Sign in",
            configured=bool(keys),
            notice="That is not an operator key.",
            notice_kind="error",
        )
    session_id = operator_sessions.begin(db(), fingerprint)
    db().commit()
    session.clear()  # a new session for a new identity: nothing carried over from before sign-in
    session.permanent = True
    session[operator_sessions.COOKIE_FIELD] = str(session_id)
    log.info("operator signed in with key %s from %s", fingerprint, request.remote_addr)
    return redirect(url_for("queue_dashboard.dashboard"), code=303)


@blueprint.post("/sign-out")
def sign_out() -> WerkzeugResponse:
    """End the operator session for good, then forget it in this browser."""
    session_id = operator_sessions.current_session_id()
    if session_id is not None:
        operator_sessions.end(db(), session_id)
        db().commit()
    session.clear()
    return redirect(url_for("shop_front.shop"), code=303)
