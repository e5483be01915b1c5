"""The payments bounded context (see docs/architecture.md)."""
