"""Customer emails shown to those who may not read them: masked, keeping enough to tell rows apart."""

from __future__ import annotations

from typing import Any

EMAIL_FIELD = "customer_email"


def mask_email(email: str) -> str:
    """``ada.lovelace@example.com`` -> ``a***@example.com``: the domain stays, the person does not."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_emails(document: Any) -> Any:
    """A JSON document with every ``customer_email`` masked, however deep (lists, pages, nested rows)."""
    if isinstance(document, dict):
        return {
            key: mask_email(value) if key == EMAIL_FIELD and isinstance(value, str) else mask_emails(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [mask_emails(item) for item in document]
    return document
