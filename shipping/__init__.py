"""The shipping bounded context (see docs/architecture.md)."""
