"""Every ``pattern`` in the OpenAPI document means in a client what it means on the server.

Swagger UI and generated clients check input with the document's patterns in JavaScript (ECMAScript
regular expressions, as JSON Schema prescribes); the server checks it with Python's ``re``. Each pattern
is run through both engines on the same valid and invalid values: JavaScript by ``node``, Python by the
server's own validator.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from marshmallow import ValidationError

from orders.schemas import FullMatch

NODE = shutil.which("node")
# For each field or header that carries a pattern: values both engines must accept, then refuse.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "sku": (
        ["CRUNCHY-ARMCHAIR", "A", "X" * 40, "LAMP-2"],
        ["crunchy", "", "CRUNCHY ARMCHAIR", "X" * 41, "CRUNCHY-ARMCHAIR\n", "LAMPZ\n"],
    ),
    "shipping_country": (["DE", "FR"], ["DEZ", "de", "DE\n", "D", "", "ZZZ"]),
    "Idempotency-Key": (
        ["demo-1", "0190c2a4-8f1e-7c3a-9b7d-2f64f0a1c0de", "~" * 255],
        ["", "two words", "key\n", "x" * 256, "schlüssel"],
    ),
}
# Prints, for each [pattern, values] pair read from stdin, whether each value matches (flag "u": the
# Unicode mode browsers use for HTML's pattern attribute; it also refuses escapes ECMAScript lacks).
JAVASCRIPT_MATCHER = """
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map(([pattern, values]) => {
  const regex = new RegExp(pattern, "u");
  return values.map((value) => regex.test(value));
})));
"""


def patterns_in(node: Any, label: str = "") -> Iterator[tuple[str, str]]:
    """Each ``pattern`` in a JSON document, labelled with the property or parameter that holds it."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield label, node["pattern"]
        if "in" in node and "name" in node:  # a parameter object: its schema is under "schema"
            label = node["name"]
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, schema in value.items():
                    yield from patterns_in(schema, name)
            else:
                yield from patterns_in(value, label)
    elif isinstance(node, list):
        for item in node:
            yield from patterns_in(item, label)


def matches_in_javascript(cases: list[tuple[str, list[str]]]) -> list[list[bool]]:
    assert NODE is not None
    result = subprocess.run(
        [NODE, "-e", JAVASCRIPT_MATCHER],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"JavaScript could not use a pattern:\n{result.stderr}"
    answer: list[list[bool]] = json.loads(result.stdout)
    return answer


def matches_on_the_server(pattern: str, value: str) -> bool:
    try:
        FullMatch(pattern)(value)
    except ValidationError:
        return False
    return True


def test_the_document_carries_a_pattern_for_every_checked_field(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()

    assert {label for label, _ in patterns_in(document)} == set(CASES)


@pytest.mark.skipif(NODE is None, reason="node is not installed: JavaScript's reading cannot be checked")
def test_every_pattern_accepts_and_refuses_the_same_values_in_javascript_and_on_the_server(
    client: FlaskClient,
) -> None:
    document = client.get("/api/openapi.json").get_json()
    found = sorted(set(patterns_in(document)))
    cases = [(pattern, CASES[label][0] + CASES[label][1]) for label, pattern in found]

    in_javascript = matches_in_javascript(cases)

    for (label, pattern), in_javascript_per_value in zip(found, in_javascript, strict=True):
        valid, invalid = CASES[label]
        expected = [True] * len(valid) + [False] * len(invalid)
        on_the_server = [matches_on_the_server(pattern, value) for value in valid + invalid]
        assert in_javascript_per_value == expected, f"{label}: {pattern!r} in JavaScript"
        assert on_the_server == expected, f"{label}: {pattern!r} on the server"


def test_a_country_with_a_trailing_newline_is_refused_with_a_422(client: FlaskClient) -> None:
    body = {
        "customer_email": "ada@example.com",
        "shipping_country": "DE\n",
        "lines": [{"sku": "CRUNCHY-ARMCHAIR", "quantity": 1}],
    }

    response = client.post("/api/orders", json=body)

    assert response.status_code == 422
    assert "shipping_country" in response.get_json()["errors"]["json"]
