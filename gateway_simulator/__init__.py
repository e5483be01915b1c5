"""gateway_simulator: a fake payment service provider (PSP) that behaves like a real one, for demos and tests.

It is a separate HTTP service with its own storage, standing in for someone else's system: the shop's
payments context talks to it over HTTP only, and nothing here imports the shop. What it reproduces from
real providers (Stripe, Adyen and the like):

- Idempotency keys, Stripe-style. Every ``POST`` carries an ``Idempotency-Key`` header. A key seen
  before with the same body is answered with the original outcome (same charge, same status, header
  ``Idempotent-Replayed: true``), whatever happens meanwhile; the same key with another body is refused
  (422). Concurrent requests with one new key make exactly one charge: the key is UNIQUE and the insert
  is ``INSERT ... ON CONFLICT DO NOTHING``.
- Failures a client must survive, injected at run time (``/v1/failure-injection``): latency, transient
  errors (503, nothing happened), declines (402), and ambiguous timeouts, where the request hangs past
  the client's patience and the charge may or may not have happened. Only a retry with the same key
  tells, which is why a client must keep its key until it gets an answer.
- Refunds, including a refund of a charge that never arrived: it leaves a ``voided`` tombstone under the
  charge's key, so that a late retry of that charge is refused instead of captured.
- A ledger (``/v1/ledger``) to reconcile against: the proof that each paid order was charged once.
- An API key: every request but ``/healthz`` carries ``Authorization: Bearer <GATEWAY_API_KEY>``, or is
  answered 401 (``gateway_simulator.api_key``).

Its tables are created with ``metadata.create_all`` when it starts; they are not part of the shop's
Alembic migrations. Run it with ``shop gateway``; build it in tests with
``create_app(database_url, api_key=...)``.
"""

from gateway_simulator.app import create_app

__all__ = ["create_app"]
