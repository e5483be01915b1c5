"""The headers every response of the shop carries, telling the browser what a page may load and do.

Written by hand rather than with Flask-Talisman: the shop needs a handful of constant headers, and
Talisman would also redirect plain HTTP to HTTPS unless told not to (the demo is plain HTTP), rewrite the
session-cookie settings on every request, send the retired ``Feature-Policy`` header, and take a second
policy (the API docs') only through an attribute set on a view that flask-smorest registers.

The pages load one stylesheet and one script, both from this app, and post their forms to it; the live
refresh fetches the page again from the same origin. So their policy allows ``'self'`` and nothing
inline. Swagger UI, at ``/api/docs``, is started from a file too (``shop/web/templates/swagger_ui.html``); it
draws its icons as ``data:`` images, so its page alone allows those. (Its inline styling is done from
script, which a policy does not block; the browser tests run an operation from it under this policy.)

The ``Server`` header is gunicorn's, and gunicorn sends ``Server: gunicorn`` with no version; hiding even
that is left to the proxy in front, since gunicorn offers no setting for it.
"""

from __future__ import annotations

from flask import Flask, Response, request

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
API_DOCS_PATH = "/api/docs"
API_DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# One year. Without includeSubDomains: the shop may live beside sites it does not speak for.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"

HEADERS = {
    "X-Content-Type-Options": "nosniff",  # a JSON answer is never run as a script or shown as a page
    "X-Frame-Options": "DENY",  # frame-ancestors 'none', for browsers that predate it
    # Same-origin requests keep their Referer and Origin (a CSRF check may read them); others get none.
    "Referrer-Policy": "same-origin",
}


def init_app(app: Flask) -> None:
    """Add the headers to every response, error pages included."""
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """Set each header a view has not set itself; HSTS only on a request that came over HTTPS.

    Over plain HTTP the header would be ignored by browsers anyway; behind a proxy, gunicorn marks a
    request secure from the proxy's ``X-Forwarded-Proto`` (it trusts the header from ``forwarded_allow_ips``).
    """
    policy = API_DOCS_POLICY if request.path == API_DOCS_PATH else PAGE_POLICY
    response.headers.setdefault("Content-Security-Policy", policy)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    return response
