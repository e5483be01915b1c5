"""What ``benchmarks.shop_end_to_end`` reads from PostgreSQL: counters, connections, and the orders' fates.

Every statement the benchmark itself sends to the shop's database carries the comment ``bench-probe``,
so that ``pg_stat_statements`` totals can leave them out, and ``ShopDatabase.probe_transactions`` counts
them, so that the commit counter can too. Counters, ``pg_stat_statements`` (created in ``postgres`` only) and
``pg_stat_activity`` are read through connections to the ``postgres`` database, outside the shop's
counters. Each connection's backend PID is kept, so that its CPU can be taken out of PostgreSQL's.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from benchmarks.shop_processes import WORKER_APPLICATION_PREFIX

PROBE = "/* bench-probe */"
FINAL_STATES = ("shipped", "rejected", "payment_failed", "cancelled")
SAMPLE_SECONDS = 0.05
# The application_name of a worker's session-lock connection (queue_core/_session_lock.py, ADR 0012).
SESSION_LOCK_APPLICATION = "queue_core session lock"
TOP_STATEMENTS = 8


@dataclass
class Counters:
    """Cumulative counters of one database: commits and rollbacks, and statements run by its clients."""

    commits: int
    rollbacks: int
    statements: int


@dataclass
class Outcome:
    """Every order's final state, its placement-to-shipped latency, and when the last one settled."""

    states: Counter[str]
    shipped_latencies: list[float]  # seconds, shipments.dispatched_at - orders.created_at
    last_settled_epoch: float | None


class ShopDatabase:
    """Autocommit connections to the shop's database and to ``postgres``, for the benchmark's reads."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.name = name
        self.connection = psycopg.connect(make_conninfo(admin_url, dbname=name), autocommit=True)
        self.admin = psycopg.connect(admin_url, autocommit=True)
        self.probe_transactions = 0
        self.backend_pids = {
            "probe": self.connection.info.backend_pid,
            "stats-probe": self.admin.info.backend_pid,
        }

    def close(self) -> None:
        self.connection.close()
        self.admin.close()

    def _admin_rows(self, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.admin.execute(query, parameters).fetchall()

    def _rows(self, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.probe_transactions += 1  # autocommit: one statement, one transaction
        return self.connection.execute(f"{PROBE} {query}", parameters).fetchall()

    def counters(self) -> Counters:
        """This database's commit counters and the statements its clients ran (probes left out)."""
        (commits, rollbacks, statements), *_ = self._admin_rows(
            """
            SELECT d.xact_commit, d.xact_rollback,
                   (SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s
                    WHERE s.dbid = d.datid AND s.query NOT LIKE %s)
            FROM pg_stat_database d WHERE d.datname = %s
            """,
            (f"%{PROBE}%", self.name),
        )
        return Counters(int(commits), int(rollbacks), int(statements))

    def reset_statements(self) -> None:
        """Empty ``pg_stat_statements`` (the whole cluster's: the benchmark runs one thing at a time)."""
        self._admin_rows("SELECT pg_stat_statements_reset()")

    def top_statements(self, per: int) -> list[dict[str, object]]:
        """The statements that took the most execution time, per order (or request), probes left out."""
        rows = self._admin_rows(
            """
            SELECT left(regexp_replace(s.query, '\\s+', ' ', 'g'), 120), s.calls, s.total_exec_time
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = %s AND s.query NOT LIKE %s
            ORDER BY s.total_exec_time DESC LIMIT %s
            """,
            (self.name, f"%{PROBE}%", TOP_STATEMENTS),
        )
        return [
            {"query": query, "calls_per": round(calls / per, 2), "exec_ms_per": round(ms / per, 3)}
            for query, calls, ms in rows
        ]

    def order_ids(self, limit: int) -> list[str]:
        """Some orders' IDs, for the read requests of the HTTP tier."""
        return [str(order_id) for (order_id,) in self._rows("SELECT id FROM orders LIMIT %s", (limit,))]

    def settled_count(self) -> tuple[int, int]:
        """(orders in a final state, all orders)."""
        (settled, total), *_ = self._rows(
            "SELECT count(*) FILTER (WHERE state = ANY(%s)), count(*) FROM orders", (list(FINAL_STATES),)
        )
        return int(settled), int(total)

    def outcome(self) -> Outcome:
        """Read at the end, from the rows: the shop's own timestamps, no polling of the API."""
        rows = self._rows(
            """
            SELECT o.state, extract(epoch FROM o.created_at)::float8,
                   extract(epoch FROM s.dispatched_at)::float8, extract(epoch FROM o.updated_at)::float8
            FROM orders o LEFT JOIN shipments s ON s.order_id = o.id
            """
        )
        states: Counter[str] = Counter(state for state, *_ in rows)
        latencies = [dispatched - created for state, created, dispatched, _ in rows if state == "shipped"]
        settled = [
            max(updated, dispatched or 0.0) for state, _, dispatched, updated in rows if state in FINAL_STATES
        ]
        return Outcome(states, latencies, max(settled) if settled else None)


@dataclass
class ConnectionPeaks:
    """The most connections seen at once, sampled every ``SAMPLE_SECONDS``."""

    workers_total: int = 0  # every worker's connections, their session locks included
    by_worker: dict[str, int] = field(default_factory=dict)  # by application name: without the locks
    session_locks: int = 0
    others: int = 0  # the web app's, mostly (and the probe's own one)
    samples: int = 0


class ConnectionSampler:
    """A thread that counts the shop database's connections in ``pg_stat_activity`` until stopped."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.connection = psycopg.connect(admin_url, autocommit=True)
        self.backend_pid = self.connection.info.backend_pid
        self.database = database
        self.peaks = ConnectionPeaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-sampler", daemon=True)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.connection.close()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            rows = self.connection.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = %s GROUP BY 1",
                (self.database,),
            ).fetchall()
            workers = {name: int(count) for name, count in rows if name.startswith(WORKER_APPLICATION_PREFIX)}
            # Each worker's session lock names itself, not the worker: counted with the workers' as a whole.
            locks = sum(int(count) for name, count in rows if name == SESSION_LOCK_APPLICATION)
            others = sum(int(count) for name, count in rows if name not in workers) - locks
            peaks = self.peaks
            peaks.samples += 1
            peaks.workers_total = max(peaks.workers_total, sum(workers.values()) + locks)
            peaks.session_locks = max(peaks.session_locks, locks)
            peaks.others = max(peaks.others, others)
            for name, count in workers.items():
                peaks.by_worker[name] = max(peaks.by_worker.get(name, 0), count)
