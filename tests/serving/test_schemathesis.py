"""Schemathesis over the service's own OpenAPI schema: every operation, with inputs generated from
the schema (valid and invalid), must never answer 5xx and must answer with a status code the schema
documents. Bounded (``max_examples`` per operation) so it stays well under a minute in ``make test``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the test extra")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import status_code_conformance  # noqa: E402

from crossrec.serving.app import create_app  # noqa: E402
from crossrec.serving.settings import ServeSettings  # noqa: E402

EXAMPLES = 30  # per operation
KNOWN = {"user_id": ["u0", "u3"], "item_id": ["i1", "i4"]}  # ids the toy artifact has


def _with_known_ids(case, pick: int):
    """Half the cases address a user or item the artifact knows (random ids are all 404s)."""
    for name, ids in KNOWN.items():
        if case.path_parameters and name in case.path_parameters and pick < len(ids):
            case.path_parameters[name] = ids[pick]
    return case


def test_no_generated_request_gets_a_server_error_or_an_undocumented_status(bpr_artifact: Path) -> None:
    app = create_app(
        bpr_artifact, ServeSettings(artifact=bpr_artifact, reload_on_sighup=False, max_body_bytes=4096)
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/healthz", "/v1/recommendations"}
    statuses: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=st.builds(_with_known_ids, operation.as_strategy(), st.integers(0, 3)))
        @settings(
            max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
        )
        def call(case) -> None:
            response = case.call()
            statuses.setdefault(case.operation.label, set()).add(response.status_code)
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

        call()
    assert set(statuses) == {op.label for op in operations}  # every operation was really called
    assert all(200 in codes for codes in statuses.values())  # each operation also answered normally
    assert any(400 <= code < 500 for codes in statuses.values() for code in codes)  # invalid inputs too
