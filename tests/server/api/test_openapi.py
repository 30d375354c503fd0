"""The OpenAPI document shows what every route answers (issue 11, item 6).

Every operation's 2xx JSON answer names a model (a ``$ref`` to ``components/schemas``,
directly or as the items of a list): neither ``{}`` nor a bare "object with any
properties", which is what a route returning ``dict[str, Any]`` without a
``response_model`` shows and which tells a client nothing.  The answers that are not JSON
(files, an event stream) declare their media types instead; operations that answer 204
have no body.  Whether the answers really match their models is checked by schemathesis
(``test_schemathesis.py``, response-schema conformance).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.clock import aware
from patchpilot.db.tables import api_tokens
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token

# Answers that are not JSON: the media types each declares (and why it is not JSON).
NOT_JSON: dict[tuple[str, str], set[str]] = {
    # A report file: pdf, html, csv or xlsx, chosen by ``format`` (its 202, a report job
    # started for a report too large to make now, is JSON with a model: NOT_JSON_ONLY_200).
    ("GET", "/api/reports/{kind}"): {
        "application/pdf", "text/html", "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    # A report job's file: the same four.
    ("GET", "/api/reports/jobs/{job_id}/file"): {
        "application/pdf", "text/html", "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    # The patch plan as a CSV file.
    ("GET", "/api/plan.csv"): {"text/csv"},
    # The Windows KBs per host: a CSV file and a PowerShell script.
    ("GET", "/api/plan/windows-kbs.csv"): {"text/csv"},
    ("GET", "/api/plan/windows-updates.ps1"): {"text/plain"},
    # A template of the generic findings format: CSV or JSON by its name.
    ("GET", "/api/imports/templates/{name}"): {"text/csv", "application/json"},
    # Server-Sent Events: the sweep's counts as they change.
    ("GET", "/api/sweeps/{sweep_id}/events"): {"text/event-stream"},
}
# Operations of NOT_JSON whose other 2xx answers are JSON with a model.
NOT_JSON_ONLY_200 = {("GET", "/api/reports/{kind}")}
# JSON answers that may carry another media type too: (operation, the other one).
ALSO: dict[tuple[str, str], set[str]] = {
    # The Ansible export: a zip by default, JSON (file name -> text) with format=json.
    ("GET", "/api/plan/ansible"): {"application/zip"},
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The app's OpenAPI document (built without touching a database)."""
    from sqlalchemy import create_engine

    engine: Engine = create_engine("sqlite://")
    try:
        return create_app(engine).openapi()
    finally:
        engine.dispose()


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, ops in document["paths"].items()
            for method, op in ops.items()}


def _names_a_model(schema: dict[str, Any]) -> bool:
    """Whether a JSON answer's schema is a model or a list of models."""
    if "$ref" in schema:
        return schema["$ref"].startswith("#/components/schemas/")
    if schema.get("type") == "array":
        return _names_a_model(schema.get("items") or {})
    return False


def test_every_json_answer_names_a_model(document: dict[str, Any]) -> None:
    """No 2xx JSON answer is ``{}`` or an untyped object; non-JSON answers declare their
    media types; a 2xx without a body is a 204."""
    problems = []
    for key, op in _operations(document).items():
        for code, answer in op["responses"].items():
            if not code.startswith("2"):
                continue
            content = answer.get("content") or {}
            if key in NOT_JSON and (code == "200" or key not in NOT_JSON_ONLY_200):
                if set(content) != NOT_JSON[key]:
                    problems.append(f"{key} {code}: media types {sorted(content)}")
                continue
            if not content:
                if code != "204":
                    problems.append(f"{key} {code}: no content declared")
                continue
            if set(content) - {"application/json"} != ALSO.get(key, set()):
                problems.append(f"{key} {code}: media types {sorted(content)}")
            schema = content.get("application/json", {}).get("schema") or {}
            if not _names_a_model(schema):
                problems.append(f"{key} {code}: JSON answer without a model: {schema}")
    assert problems == []


def test_the_exceptions_name_real_operations(document: dict[str, Any]) -> None:
    """Every operation listed as an exception exists, so the lists cannot go stale."""
    assert set(NOT_JSON) | set(ALSO) | NOT_JSON_ONLY_200 <= set(_operations(document))


def test_models_describe_the_answers(document: dict[str, Any]) -> None:
    """Spot checks that the models are the answers' real fields (not empty shells)."""
    schemas = document["components"]["schemas"]
    assert set(schemas["GroupDetail"]["properties"]) == {
        "id", "name", "description", "rule", "max_concurrent_scans", "created_at",
        "static_members", "members", "schedules", "windows"}
    assert set(schemas["SweepOut"]["properties"]) == {
        "id", "query", "label", "vulns", "created_by", "created_at", "deadline", "state",
        "initial", "status", "jobs"}
    assert set(schemas["Health"]["required"]) == {"status", "version"}
    assert set(schemas["FindingPage"]["properties"]) == {"total", "total_exact", "items"}
    assert set(schemas["FindingDetailOut"]["properties"]) == {
        "id", "asset_id", "state", "first_seen", "last_seen", "times_reopened", "priority",
        "priority_reason", "priority_reason_code", "due_date", "vuln_id", "cve", "name",
        "summary", "ecosystem", "package", "aliases", "cvss", "severity", "severity_source",
        "exploit", "fix", "workaround", "evidence", "cwes", "references", "sources",
        "installations", "tickets", "solution", "exploit_reported", "field_sources",
        "assignee", "tags", "override"}
    # What issue 12 added to the answers is in their models (a field left out of a model
    # is silently dropped from the answer).
    assert {"installations", "priority_reason_code"} <= set(
        schemas["FindingItem"]["properties"])
    assert {"owners", "detail"} <= set(schemas["EvidenceOut"]["properties"])
    assert "coverage" in schemas["OverviewOut"]["properties"]
    operations = _operations(document)
    for key, model in ((("GET", "/api/overview"), "OverviewOut"),
                       (("POST", "/api/triage"), "TriageDone"),
                       (("DELETE", "/api/triage/{decision_id}"), "TriageDone")):
        answer = next(a for code, a in operations[key]["responses"].items()
                      if code.startswith("2"))
        assert answer["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"}
    plan = _operations(document)[("GET", "/api/plan")]["responses"]["200"]
    assert plan["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PlanPageOut"}
    hosts = _operations(document)[("GET", "/api/plan/items/{key}/hosts")]["responses"]["200"]
    assert hosts["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PlanHostsOut"}


def test_listed_tokens_carry_their_utc_offset(engine: Engine) -> None:
    """``GET /api/tokens`` answers RFC 3339 date-times, as its model declares: on SQLite,
    which stores no offset, they were naive (``2026-12-03T09:01:50.314261``, found by the
    schemathesis conformance check); now every stored moment comes back in UTC, ``…Z``."""
    admin, admin_id = create_api_token(engine, user="admin-user", role=Role.ADMIN)
    _, other_id = create_api_token(engine, user="viewer-user", role=Role.VIEWER, ttl_days=3)
    with TestClient(create_app(engine)) as client:
        assert client.delete(f"/api/tokens/{other_id}",
                             headers={"Authorization": f"Bearer {admin}"}).status_code == 204
        answer = client.get("/api/tokens", headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 200
    listed = {t["id"]: t for t in answer.json()}
    assert sorted(listed) == sorted([admin_id, other_id])
    with engine.connect() as conn:
        stored = {r.id: r for r in conn.execute(select(api_tokens))}
    for token_id, token in listed.items():
        for field in ("created_at", "last_used_at", "expires_at", "revoked_at"):
            moment = aware(getattr(stored[token_id], field))
            if moment is None:
                assert token[field] is None, (token_id, field)
                continue
            assert token[field].endswith("Z"), (token_id, field, token[field])
            assert datetime.fromisoformat(token[field]) == moment
    assert listed[admin_id]["last_used_at"] is not None  # it was just used
    assert listed[other_id]["revoked_at"] is not None and listed[other_id]["expires_at"]
