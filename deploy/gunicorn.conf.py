"""Gunicorn settings for the shop's web process.

``shop web`` runs ``gunicorn --config deploy/gunicorn.conf.py 'shop.web.app:create_app()'``; a container or
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
# The app reads WEB_THREADS too (shop.config.Settings.web_threads) and keeps that many pooled connections.
threads = int(os.environ.get("WEB_THREADS", "8"))

# The app is built after the fork, in each worker: connection pools must never cross a fork.
preload_app = False

# What `timeout` does with gthread: each worker's main thread (the loop that accepts connections and
# watches kept-alive ones) touches a heartbeat file about once a second; the arbiter kills a worker
# whose heartbeat is older than `timeout`. Request threads never touch it, so a request stuck in a thread
# (a client sending one byte a minute, a hung call) is never timed out: only a worker whose main loop
# is stuck, or whose process is frozen, is killed and replaced.
timeout = int(os.environ.get("WEB_TIMEOUT_SECONDS", "30"))
# On SIGTERM, requests in flight get this long to finish before the workers are killed.
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_SECONDS", "20"))

# Slow clients. A thread serves one connection from its first byte: gunicorn (27) hands a new connection
# back to the main loop only if it sends nothing for 5 s; once a byte arrives, the thread reads the rest
# of the request head and body with no deadline. So a few clients that send slowly hold every thread of
# every worker, and gunicorn has no setting against it. In production gunicorn sits behind nginx
# (deploy/nginx-site.conf, docs/deploy.md), which sends it only complete requests and reads responses
# at once: the threads then work only for the app. Bind to 127.0.0.1, or a network only nginx reaches.
# Idle kept-alive connections (from nginx) wait in the main loop, not in a thread, for this long:
keepalive = 5

# Request size limits, a backstop behind nginx's (which answer in the API's JSON shape): at least as
# large as what nginx lets through (a request line or header line fits one of its 8 KiB buffers), so a
# request nginx accepts is never refused here. nginx does not count header fields; 100 is plenty.
limit_request_line = 8190  # the most gunicorn allows
limit_request_field_size = 8190
limit_request_fields = 100

# The scheme (http or https) comes from nginx's X-Forwarded-Proto, trusted only from the peers in
# FORWARDED_ALLOW_IPS (gunicorn reads it itself; default 127.0.0.1,::1, where nginx runs). Only that one
# header: gunicorn's defaults also trust X-Forwarded-Ssl and X-Forwarded-Protocol, which nginx passes
# through from the client unchanged.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# Recycle workers now and then, so a slow leak cannot grow without bound.
max_requests = 5000
max_requests_jitter = 500

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")
# The app's own loggers (``logging.getLogger(__name__)``: sign-ins, refusals, failed calls) log through the
# root logger, which nothing else configures in this process: without a handler there, INFO lines are lost
# and warnings reach stderr bare, with no time or level. This gives the root logger one, at the same
# level and in the error log's shape plus the logger's name. "loggers" is empty on purpose: gunicorn's own
# two loggers keep the handlers and formats it gave them above (and do not propagate to the root).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": loglevel.upper(), "handlers": ["app"]},
    "loggers": {},
    "handlers": {"app": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"}},
    "formatters": {
        "app": {
            "format": "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
            "datefmt": "[%Y-%m-%d %H:%M:%S %z]",
        }
    },
}

# Gunicorn 25+ opens a control socket at one path per user; two servers on one machine (the demo's
# web app and gateway, an end-to-end test's) would fight over it, and nothing here uses it.
control_socket_disable = True
