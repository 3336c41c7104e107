"""Property: no input makes the service answer 5xx.

Every operation of the service's own OpenAPI schema is called with random path parameters,
query strings, headers and bodies (valid JSON of any shape, near-valid cold-start bodies and raw
bytes). Hypothesis drives the inputs (tests/serving/test_schemathesis.py adds schemathesis on the schema).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.conftest import make_client

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
item_ids = st.lists(st.sampled_from(["i1", "i2", "i24", "i0"]) | st.text(max_size=600), max_size=30)
cold_bodies = st.fixed_dictionaries(
    {},
    optional={
        "item_ids": item_ids | json_values,
        "attributes": st.dictionaries(st.text(max_size=140), json_values, max_size=5) | json_values,
        "k": st.integers(-5, 2000) | json_values,
        "exclude_seen": st.booleans() | json_values,
    },
)
bodies = st.one_of(
    cold_bodies.map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
)
path_values = st.sampled_from(["u3", "u0", "i4", "i1"]) | st.text(min_size=1, max_size=600)
query_values = st.one_of(
    st.integers(-10, 5000).map(str), st.sampled_from(["true", "false", "1", "no"]), st.text()
)


@pytest.fixture(scope="module")
def clients(bpr_artifact: Path, popularity_artifact: Path) -> Iterator[list[TestClient]]:
    with (
        make_client(bpr_artifact, max_body_bytes=4096) as open_client,
        make_client(
            popularity_artifact, api_keys=frozenset({"k-123456"}), admin_keys=frozenset({"admin-123456"})
        ) as secured,
    ):
        yield [open_client, secured]


@pytest.fixture(scope="module")
def operations(clients: list[TestClient]) -> list[tuple[str, str]]:
    schema = clients[1].get("/openapi.json").json()  # the client with an admin endpoint
    return [(method.upper(), path) for path, methods in schema["paths"].items() for method in methods]


#: Bounded in CI; run long with ``CROSSREC_FUZZ_EXAMPLES=5000 pytest tests/serving/test_no_server_errors.py``.
EXAMPLES = int(os.environ.get("CROSSREC_FUZZ_EXAMPLES", "250"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_input_makes_the_service_fail(
    clients: list[TestClient], operations: list[tuple[str, str]], data: st.DataObject
) -> None:
    client = data.draw(st.sampled_from(clients))
    method, template = data.draw(st.sampled_from(operations))
    path = template
    for name in ("user_id", "item_id"):
        path = path.replace("{" + name + "}", quote(data.draw(path_values), safe=""))
    params = data.draw(
        st.dictionaries(st.sampled_from(["k", "exclude_seen", "other"]), query_values, max_size=3)
    )
    headers = {
        "content-type": data.draw(st.sampled_from(["application/json", "text/plain", "application/x"]))
    }
    if data.draw(st.booleans()):
        headers["X-API-Key"] = data.draw(st.sampled_from(["k-123456", "admin-123456", "wrong", ""]))
    content = data.draw(bodies) if method == "POST" else None
    if template == "/v1/admin/reload":
        content = None  # reloading is covered in test_api; keep this test about inputs

    response = client.request(method, path, params=params, headers=headers, content=content)

    assert response.status_code < 500, (method, path, params, content, response.text)
