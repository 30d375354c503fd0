"""Property tests of the whole API from its OpenAPI schema (schemathesis): no input makes
a route answer 5xx, and every 2xx answer matches the model its operation declares
(schemathesis's response-schema conformance), on SQLite and on PostgreSQL.

A fixed budget: ``EXAMPLES`` generated requests per operation and generation mode
(requests that fit the schema, and requests that do not), derandomized -- the same
requests on every run, so a failure is reproducible and the run time bounded -- and no
deadline.  Every operation is called with an admin token, except the agent-only ones,
which get an agent credential (an admin would only ever see their 403).  No operation is
left out: the agents' long-poll has its ``wait`` bounded instead (``_bounded``).

schemathesis's own pytest plugin does not run under pytest 9 (it reads a private
attribute pytest removed), so the operations are driven here through its Python API: one
hypothesis run per operation and mode, every failure collected and reported together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy import Engine

from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token, create_enrolment_token

EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
# Operations only an enrolled agent may call (every other one admits an admin).
AGENT_ONLY = {("GET", "/api/agents/jobs"), ("POST", "/api/agents/jobs/{job_id}/result")}
# The long-poll waits up to 60 s for a job that never comes in this database.
MAX_WAIT = 0.0


def _credentials(engine: Engine, client: TestClient) -> dict[str, str]:
    """An admin token and an agent credential on the test database."""
    admin = create_api_token(engine, user="admin-user", role=Role.ADMIN)[0]
    enrol = create_enrolment_token(engine, created_by="test")
    answer = client.post("/api/agents/enrol", json={"token": enrol, "name": "agent-1"})
    assert answer.status_code == 201
    return {"admin": admin, "agent": answer.json()["credential"]}


def answers_match_their_models(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's response-schema conformance, for the 2xx answers: those are what the
    routes' ``response_model`` declares (``test_openapi.py``).  An error answer's
    ``detail`` is a message (a stage error through the one handler) or FastAPI's list of
    field problems, and its schema is not what this test is about."""
    if 200 <= response.status_code < 300:
        return response_schema_conformance(ctx, response, case)
    return None


def _bounded(case: Any) -> None:
    """Bound what would make one example slow rather than leave its operation out."""
    if (case.method.upper(), case.path) != ("GET", "/api/agents/jobs"):
        return
    query = dict(case.query or {})
    try:
        slow = float(query.get("wait", 25.0)) > MAX_WAIT
    except (TypeError, ValueError):
        slow = False  # not a number: answered 422 at once
    if slow:
        query["wait"] = MAX_WAIT
    case.query = query


def _check(operation: Any, mode: GenerationMode, tokens: dict[str, str]) -> str | None:
    """Run one operation's examples in ``mode``; the first failure, described, or None."""
    key = (operation.method.upper(), operation.path)
    headers = {"Authorization": f"Bearer {tokens['agent' if key in AGENT_ONLY else 'admin']}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[mode], derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    def run(case: Any) -> None:
        _bounded(case)
        case.call_and_validate(headers=headers, checks=[not_a_server_error,
                                                        answers_match_their_models])

    try:
        run()
    except Unsatisfiable:
        # Nothing to get wrong: an operation without parameters has no invalid request.
        return None
    except Exception as exc:  # noqa: BLE001 - every kind of failure is reported
        return f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"
    return None


def test_no_operation_answers_a_server_error(engine: Engine, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """No generated request -- valid or not -- is answered 5xx, by any operation, and
    every 2xx answer matches its operation's declared model."""
    # A generated upload to POST /api/imports is spooled under the home: the test's own.
    monkeypatch.setenv("PATCHPILOT_HOME", str(tmp_path / "home"))
    app = create_app(engine)
    with TestClient(app) as client:
        tokens = _credentials(engine, client)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in app.openapi()["paths"].values())
    failures = [problem for operation in operations for mode in EXAMPLES
                if (problem := _check(operation, mode, tokens))]
    assert not failures, "\n\n".join(failures)
