"""The sweeps API: start (analyst), list and read (viewer), and the live event stream.

The event stream is read from a real uvicorn server on a loopback port while the sweep
changes underneath it (a refreshed inventory, then the deadline), so what is asserted is
what a browser's EventSource would receive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from patchpilot.scans.sweeps import close_sweeps
from patchpilot.server.app import create_app
from patchpilot.server.security import Role, create_api_token
from tests.builders.processes import free_port
from tests.builders.sweep_estate import BASH, SOPE_OLD, inventory, match, sweep_estate


@pytest.fixture
def estate(engine: Engine, feed_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The sweep tests' knowledge base and seven assets (``tests.builders.sweep_estate``)."""
    return sweep_estate(engine, feed_dir)


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    return {r.value: create_api_token(engine, user=f"{r.value}-user", role=r)[0] for r in Role}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_start_list_and_read(engine: Engine, estate, tokens) -> None:  # type: ignore[no-untyped-def]
    with TestClient(create_app(engine)) as client:
        refused = client.post("/api/sweeps", headers=_auth(tokens["viewer"]),
                              json={"vuln": "CVE-2025-53603"})
        assert refused.status_code == 403
        answer = client.post("/api/sweeps", headers=_auth(tokens["analyst"]),
                             json={"vuln": "CVE-2025-53603", "deadline_minutes": 15})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["initial"] == {"affected": 1, "not_affected": 4, "unknown": 2}
        assert body["status"]["pending"] == 3 and body["jobs"] == 3
        assert body["created_by"] == "analyst-user" and len(body["results"]) == 7
        [hit] = [r for r in body["results"] if r["initial"] == "affected"]
        assert (hit["name"], hit["packages"][0]["fixed"]) == ("deb-old", "5.8.0-1+deb12u1")
        listed = client.get("/api/sweeps", headers=_auth(tokens["viewer"])).json()
        assert [(s["id"], s["label"], s["state"]) for s in listed] == [
            (body["id"], "CVE-2025-53603", "running")]
        assert "results" not in listed[0]
        one = client.get(f"/api/sweeps/{body['id']}", headers=_auth(tokens["viewer"])).json()
        assert one["results"] == body["results"]
        assert client.get("/api/sweeps/999", headers=_auth(tokens["viewer"])).status_code == 404
        bad = client.post("/api/sweeps", headers=_auth(tokens["analyst"]),
                          json={"package": "xz-utils"})
        assert bad.status_code == 422 and "go together" in bad.text
        unknown = client.post("/api/sweeps", headers=_auth(tokens["analyst"]),
                              json={"vuln": "CVE-1999-0001"})
        assert unknown.status_code == 422
        assert "unknown to the knowledge base" in unknown.json()["detail"]


@pytest.fixture
def live(engine: Engine) -> Iterator[str]:
    """A real uvicorn server of the app on 127.0.0.1 (in a thread); its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict]]:  # type: ignore[type-arg]
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            assert name is not None
            yield name, orjson.loads(line[6:])
            name = None


def test_events_stream_progress_until_done(engine: Engine, estate, tokens, live) -> None:  # type: ignore[no-untyped-def]
    headers = _auth(tokens["analyst"])
    sweep = httpx.post(f"{live}/api/sweeps", headers=headers,
                       json={"vuln": "CVE-2025-53603", "deadline_minutes": 5}).json()
    seen: list[tuple[str, dict]] = []  # type: ignore[type-arg]
    with httpx.stream("GET", f"{live}/api/sweeps/{sweep['id']}/events",
                      headers=_auth(tokens["viewer"]), timeout=30) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for name, data in _events(answer.iter_lines()):
            seen.append((name, data))
            if len(seen) == 1:
                # The agent of deb-old answers: its refreshed inventory confirms it.
                match(engine, inventory("deb-old", *SOPE_OLD, BASH))
            elif len(seen) == 2:
                # Nobody else answers before the deadline.
                close_sweeps(engine, now=datetime.fromisoformat(sweep["created_at"])
                             + timedelta(minutes=5))
    names = [n for n, _ in seen]
    assert names == ["progress", "progress", "progress", "done"]
    statuses = [(d["state"], d["status"]["pending"], d["status"]["confirmed"],
                 d["status"]["timed_out"]) for _, d in seen]
    assert statuses == [("running", 3, 0, 0), ("running", 2, 1, 0), ("done", 0, 1, 2),
                        ("done", 0, 1, 2)]
    assert all(d["initial"] == {"affected": 1, "not_affected": 4, "unknown": 2}
               for _, d in seen)

