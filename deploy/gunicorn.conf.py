"""Gunicorn settings for the shop's web process.

``shop web`` runs ``gunicorn --config deploy/gunicorn.conf.py 'shop.app:create_app()'``; a container or
a systemd unit can run exactly that. Every setting can be overridden from the environment, so one file
serves the demo, the tests and production.
"""

import os

# Where to listen. Behind a proxy or in a container, bind 0.0.0.0 through BIND.
bind = os.environ.get("BIND", "127.0.0.1:8000")

# Threads, not processes, carry the concurrency: a request spends most of its time waiting for the
# database, and every process holds a connection pool of its own. Two processes survive one crash.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))

# The app is built after the fork, in each worker: connection pools must never cross a fork.
preload_app = False

# A request still running after this long is stuck: the worker is killed and replaced.
timeout = int(os.environ.get("WEB_TIMEOUT_SECONDS", "30"))
# On SIGTERM, requests in flight get this long to finish before the workers are killed.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_SECONDS", "20"))
keepalive = 5

# Recycle workers now and then, so a slow leak cannot grow without bound.
max_requests = 5000
max_requests_jitter = 500

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")

# Gunicorn 25+ opens a control socket at one path per user; two servers on one machine (the demo's
# web app and gateway, an end-to-end test's) would fight over it, and nothing here uses it.
control_socket_disable = True
