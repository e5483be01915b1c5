"""A simulated parcel carrier: it books manifests and hands out tracking numbers.

In real life the carrier is someone else's system behind an HTTP API; this module stands in for it so
the demo and the tests run without one. What it keeps of the real thing is the property the manifest
task relies on: booking is idempotent per key. The shipping context books each manifest under its task's
ID, so a retried task (whose first attempt booked, then failed to commit) gets the same manifest number
and the same tracking numbers back instead of a second pickup.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Parcel:
    """One parcel on a manifest, as the carrier sees it."""

    shipment_id: uuid.UUID
    destination_country: str


@dataclass(frozen=True)
class Manifest:
    """A booked manifest: its number, and the tracking number of each parcel, by shipment ID."""

    manifest_number: str
    tracking_numbers: dict[uuid.UUID, str]


def book_manifest(manifest_key: str, parcels: Sequence[Parcel]) -> Manifest:
    """Book ``parcels`` under ``manifest_key``; the same key and parcels always give the same answer.

    Numbers are derived from the key (and each parcel's shipment ID), never drawn at random: that is how
    this stand-in is idempotent without keeping state between calls.
    """
    tracking_numbers = {
        parcel.shipment_id: f"{parcel.destination_country}{_digest(manifest_key, str(parcel.shipment_id))}"
        for parcel in parcels
    }
    return Manifest(manifest_number=f"MF-{_digest(manifest_key)[:12]}", tracking_numbers=tracking_numbers)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16].upper()
