"""The orders bounded context (see docs/architecture.md)."""
