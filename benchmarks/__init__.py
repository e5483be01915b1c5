"""Side-by-side benchmarks of queue_core and two peer PostgreSQL queues.

The numbers that matter are ratios measured in one run on one machine: absolute jobs per second say more
about the hardware than about the queue. Every system gets the same workload, a fresh database per
measurement, the same worker and enqueuer process layout, and the same measurement overhead (see
``probes``). Run with ``python -m benchmarks --help``.
"""
