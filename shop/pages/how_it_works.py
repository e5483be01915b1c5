"""How it works (``/how-it-works``): the classic task queue beside the inverted one, operation by operation,
each linked to the file and function in this repository that does it (shown by ``/source/<path>``).

The rows follow docs/architecture.md's table "Each claim of the pattern, where it is shown and where it is
proved"; a unit test checks that every linked function exists, so a rename cannot leave a dead link.
"""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint

from shop.config import REPO_ROOT
from shop.pages.common import render

blueprint = Blueprint("how_it_works", __name__, template_folder="templates")

# Only the application's own Python is shown: never a file outside these folders (no secrets, no .venv),
# and only files git tracks in them (not a scratch script or a copied secret someone left there).
SHOWN_PACKAGES = ("orders", "payments", "shipping", "queue_core", "shop")
NOT_A_CHECKOUT = (
    "The source view shows only files that git tracks, and this copy of the shop is not a git checkout "
    "(or git is not installed), so it shows none."
)
DEFINITION = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class CodeLink:
    """A function in this repository: ``path`` from the repository root, ``function`` defined in it."""

    path: str
    function: str

    @property
    def anchor(self) -> str:
        return f"{self.path}:{self.function}"


@dataclass(frozen=True)
class Comparison:
    """One operation, done the classic way (a payload names the business object) and the inverted way."""

    operation: str
    classic: str
    inverted: str
    code: tuple[CodeLink, ...]
    proof: str  # the test that proves it, as pytest names it


COMPARISONS = (
    Comparison(
        "Validate",
        'The task\'s payload carries <code>{"order_id": 42}</code>. The handler must check that the ID is '
        "well formed, that the order still exists and that the payload is not stale: it was copied when the "
        "task was enqueued, and the order may have changed since.",
        "There is no payload. The order row holds the task's ID; the handler looks its row up with "
        "<code>WHERE fraud_check_task_id = :task_id FOR UPDATE</code> and reads it as it is now. No row: "
        "the task is discarded at once, with no retry storm.",
        (CodeLink("orders/tasks.py", "_order_pointing_at"), CodeLink("orders/services.py", "place_order")),
        "tests/integration/orders/test_screening.py::"
        "test_a_handler_reads_the_order_as_it_is_when_it_runs_not_as_it_was_placed",
    ),
    Comparison(
        "Prevent duplicates",
        "A uniqueness key on the job (its arguments hashed), a lock in Redis, or a dedupe table, kept in "
        "step with the business data by hand; a retry after a crash may still run the work twice.",
        "A check on the object itself: the charge handler acts only while the payment is "
        "<code>pending</code> (with one idempotency key per payment at the gateway), and the screening "
        "join moves the order out of <code>screening</code> exactly once, under the row lock.",
        (CodeLink("payments/tasks.py", "charge_payment"), CodeLink("orders/screening.py", "join_if_ready")),
        "tests/integration/payments/test_charging_exactly_once.py::"
        "test_a_duplicate_delivery_of_a_finished_charge_task_charges_nothing_more",
    ),
    Comparison(
        "Cancel",
        "Search the queue for jobs whose JSON arguments mention the order (a scan, or an index on a payload "
        "field), hope none is claimed in between, then cancel each one found.",
        "Read the task IDs off the order's own row and cancel those tasks, in the transaction that cancels "
        "the order: the order and its tasks change together or not at all.",
        (
            CodeLink("orders/services.py", "cancel_order"),
            CodeLink("orders/screening.py", "stop_screening_tasks"),
            CodeLink("payments/services.py", "cancel_payment_for_order"),
        ),
        "tests/integration/orders/test_cancel_and_delete.py::"
        "test_cancelling_a_screening_order_cancels_both_pending_tasks_through_its_ids",
    ),
    Comparison(
        "Call a payment provider",
        "The job opens a transaction, locks the order, calls the provider and commits: the transaction, a "
        "pooled connection and the row lock wait as long as the provider does, and a customer who cancels "
        "meanwhile waits too, or is told to try again.",
        "Three phases: read what to charge in a short transaction, call holding nothing (the queue refuses "
        "a call made inside a transaction), then lock the payment and record the answer with the task's "
        "fenced completion, only if the payment still waits for this task. A cancellation meanwhile is "
        "accepted at once; its void gives back what the charge took.",
        (
            CodeLink("payments/tasks.py", "charge_payment"),
            CodeLink("queue_core/_running_task.py", "outside_transaction"),
            CodeLink("payments/services.py", "payment_charged_by"),
        ),
        "tests/integration/payments/test_cancelling_and_refunding.py::"
        "test_while_the_charge_is_at_the_gateway_no_transaction_or_lock_is_held_and_a_cancellation_is_final",
    ),
    Comparison(
        "Find what is in process",
        "Ask the queue for pending and running jobs, decode their payloads and join them back to orders by "
        "hand; the queue and the business tables can disagree at any moment.",
        "<code>WHERE fraud_check_task_id IS NOT NULL OR stock_reservation_task_id IS NOT NULL</code>: a "
        "direct query on the business table, answered from partial indexes that hold only in-flight rows.",
        (CodeLink("orders/services.py", "list_orders"), CodeLink("payments/services.py", "list_payments")),
        "tests/integration/orders/test_repair_and_reactions.py::"
        "test_being_processed_is_answered_from_the_partial_indexes",
    ),
    Comparison(
        "See what a task is for",
        "Read its payload and guess; once the job is gone from the queue, nothing links the order to it.",
        "The rows that point at it, found through the registered task-ID columns: for a batch (manifest) "
        "task, every shipment in it. The task explorer shows them on every task's page.",
        (
            CodeLink("queue_core/_references.py", "referencing_rows"),
            CodeLink("shipping/services.py", "dispatch_ready_shipments"),
        ),
        "tests/integration/shipping/test_batches.py::"
        "test_ready_shipments_all_point_at_one_manifest_task_that_carries_no_args",
    ),
    Comparison(
        "Nothing stays stuck",
        "A job that died leaves its order waiting; someone notices the order, then searches the dead jobs.",
        "Rows pointing at a dead, cancelled, expired, discarded or missing task are found by a join and "
        "handed to their context's repair function every few seconds.",
        (
            CodeLink("queue_core/_references.py", "find_dangling"),
            CodeLink("payments/tasks.py", "repair_charge_references"),
            CodeLink("shop/tasks.py", "build_registry"),
        ),
        "tests/integration/payments/test_repairing_dangling_tasks.py",
    ),
)


@blueprint.get("/how-it-works")
def how_it_works() -> tuple[str, int]:
    """The classic approach beside the inverted one, with links to the code."""
    return render("how_it_works.html", title="How it works", comparisons=COMPARISONS)


@blueprint.get("/source/<path:path>")
def source(path: str) -> tuple[str, int]:
    """One of the application's Python files, with an anchor at every ``def`` and ``class``."""
    if tracked_files() is None:
        return render("source_missing.html", 404, title=path, path=path, reason=NOT_A_CHECKOUT)
    file = shown_file(path)
    if file is None:
        reason = "No such file among the application's own Python files."
        return render("source_missing.html", 404, title=path, path=path, reason=reason)
    lines = file.read_text(encoding="utf-8").splitlines()
    anchors: dict[int, str] = {}
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        match = DEFINITION.match(line)
        if match and match.group(1) not in seen:
            seen.add(match.group(1))
            anchors[number] = match.group(1)
    return render("source.html", title=path, path=path, lines=lines, anchors=anchors)


def shown_file(path: str) -> Path | None:
    """The file at ``path`` if it is one of the application's tracked Python files, else None.

    ``path`` is looked up in git's listing, as a string, before the filesystem is asked anything: what a
    visitor typed (``..``, a name longer than the filesystem allows) never reaches it.
    """
    if not path.endswith(".py") or path.split("/", 1)[0] not in SHOWN_PACKAGES:
        return None
    if path not in (tracked_files() or ()):
        return None
    root = REPO_ROOT.resolve()
    try:
        file = (root / path).resolve()
    except (OSError, RuntimeError):  # a tracked symbolic link that loops
        return None
    if not file.is_relative_to(root) or not file.is_file():  # a link out of the checkout, a deleted file
        return None
    return file


@functools.cache
def tracked_files() -> frozenset[str] | None:
    """The shown packages' files that git tracks, asked once per process; None outside a git checkout."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--", *SHOWN_PACKAGES],
            capture_output=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout (git exits 128)
        return None
    return frozenset(name for name in listing.stdout.decode("utf-8", "replace").split("\0") if name)


def defines(path: str, function: str) -> bool:
    """Whether the file at ``path`` defines ``function`` (what the unit test checks for every link)."""
    file = shown_file(path)
    if file is None:
        return False
    return any(
        (match := DEFINITION.match(line)) and match.group(1) == function
        for line in file.read_text(encoding="utf-8").splitlines()
    )
