"""The simulated carrier is idempotent per manifest key: a retried manifest task books the same numbers."""

from __future__ import annotations

import uuid

from shipping.carrier import Parcel, book_manifest

ARMCHAIR = Parcel(uuid.UUID("01900000-0000-7000-8000-000000000001"), "NL")
TABLE = Parcel(uuid.UUID("01900000-0000-7000-8000-000000000002"), "DE")
LAMP = Parcel(uuid.UUID("01900000-0000-7000-8000-000000000003"), "FR")
KEY = "01900000-0000-7000-8000-00000000f00d"


def test_the_same_key_and_parcels_book_the_same_manifest() -> None:
    first = book_manifest(KEY, [ARMCHAIR, TABLE, LAMP])
    again = book_manifest(KEY, [ARMCHAIR, TABLE, LAMP])

    assert again == first


def test_each_parcel_gets_its_own_tracking_number() -> None:
    manifest = book_manifest(KEY, [ARMCHAIR, TABLE, LAMP])

    assert set(manifest.tracking_numbers) == {ARMCHAIR.shipment_id, TABLE.shipment_id, LAMP.shipment_id}
    assert len(set(manifest.tracking_numbers.values())) == 3
    assert manifest.tracking_numbers[TABLE.shipment_id].startswith("DE")


def test_a_parcels_tracking_number_does_not_depend_on_the_rest_of_the_manifest() -> None:
    full = book_manifest(KEY, [ARMCHAIR, TABLE, LAMP])
    without_the_lamp = book_manifest(KEY, [TABLE, ARMCHAIR])

    assert without_the_lamp.manifest_number == full.manifest_number
    armchair = ARMCHAIR.shipment_id
    assert without_the_lamp.tracking_numbers[armchair] == full.tracking_numbers[armchair]


def test_another_key_books_another_manifest() -> None:
    first = book_manifest(KEY, [ARMCHAIR])
    other = book_manifest("01900000-0000-7000-8000-00000000beef", [ARMCHAIR])

    assert other.manifest_number != first.manifest_number
    assert other.tracking_numbers[ARMCHAIR.shipment_id] != first.tracking_numbers[ARMCHAIR.shipment_id]
    assert len(first.manifest_number) <= 64 and len(first.tracking_numbers[ARMCHAIR.shipment_id]) <= 64
