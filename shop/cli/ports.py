"""Whether a command may listen on its port: asked once, before anything starts or is written.

``shop web``, ``shop gateway`` and ``shop demo`` ask here first. Gunicorn would retry a taken port for
five seconds and then exit with an easy-to-miss log line; the demo would go on and place its sample orders
into whatever else listens there.
"""

from __future__ import annotations

import socket

import click


def check_port_is_free(host: str, port: int, *, option: str = "--port") -> None:
    """Raise a one-line ``ClickException`` naming the port (and the option that picks another) if taken.

    A probe socket binds the address with ``SO_REUSEADDR``, as gunicorn does, so a port left in
    ``TIME_WAIT`` by a stopped server counts as free but one that something listens on does not.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        reason = error.strerror or str(error)
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({reason}); choose another port with {option}"
        ) from None
