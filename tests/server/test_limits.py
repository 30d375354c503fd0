"""Request bodies bounded while they stream, content codings, CSRF before an upload is read,
and the security headers (issue 10, items 1, 9 and 13), on SQLite and PostgreSQL.

Where the streaming matters the tests drive the application as a server does, through its
ASGI interface, with a ``receive`` that hands over one chunk per call and counts the
calls: how many chunks the server pulled before it answered is what the server read.
TestClient cannot show that (it reads a request's whole body before the application
runs).  The last tests do the same against a real ``patchpilot server`` (uvicorn) on a
loopback port, with a client that streams a body far larger than the limit.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from patchpilot.db.tables import agents, assets, audit_log, inventories, jobs
from patchpilot.inventory.transports.file import read_inventory_bytes
from patchpilot.server.app import create_app
from patchpilot.server.headers import CSP
from patchpilot.server.security import Role, create_api_token, create_enrolment_token, set_password
from tests.builders.processes import ServerProcess, env_for, patchpilot

LIMIT = 1 << 20  # the upload limit of these tests: 1 MiB
CHUNK = 64 << 10
NPM_LOCK = "inventories/npm-package-lock/syft__npm-lock__package-lock.json"


@pytest.fixture
def app(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", "test-secret-" + "x" * 32)
    return create_app(engine, max_upload=LIMIT)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _login(client: TestClient, engine: Engine, role: Role = Role.ANALYST) -> str:
    """A session for a user of ``role``; its CSRF token."""
    set_password(engine, f"{role.value}-user", role, "a-long-password")
    answer = client.post("/login", data={"username": f"{role.value}-user",
                                         "password": "a-long-password",
                                         "csrf": _csrf(client.get("/login").text)})
    assert answer.status_code == 303, answer.text
    return _csrf(client.get("/assets/upload").text)


class Sent:
    """What the application answered, and how many body chunks it pulled."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.pulled = 0

    def json(self) -> Any:
        return orjson.loads(self.body)


def _post(app: FastAPI, path: str, chunks: Iterator[bytes], headers: dict[str, str],
          cookies: str = "") -> Sent:
    """POST ``chunks`` to ``app`` as a server would: one ``http.request`` message per chunk,
    each handed over only when the application asks for it."""
    sent = Sent()
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if cookies:
        raw.append((b"cookie", cookies.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": raw,
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    pending = iter(chunks)
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            await anyio.sleep_forever()
        chunk = next(pending, None)
        if chunk is None:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        sent.pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.status = message["status"]
            sent.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            sent.body += message.get("body", b"")

    anyio.run(app, scope, receive, send)
    return sent


def _zeros(total: int) -> Iterator[bytes]:
    for _ in range(total // CHUNK):
        yield b"0" * CHUNK


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _inventory(shared_data: Path, host: str = "plant1-orders-node") -> bytes:
    data = (shared_data / NPM_LOCK).read_bytes()
    return read_inventory_bytes(data, "package-lock.json", None, hostname=host).to_json()


# --- bodies bounded while they stream ---------------------------------------------------

def test_enrolment_body_is_refused_at_64_kib(app: FastAPI, engine: Engine) -> None:
    create_enrolment_token(engine, created_by="admin")
    # 2 MiB, chunked: the first 64 KiB chunk is within the limit, the second passes it;
    # the 30 other chunks are never pulled.
    sent = _post(app, "/api/agents/enrol", _zeros(2 << 20),
                 {"content-type": "application/json"})
    assert (sent.status, sent.pulled) == (413, 2)
    assert sent.json() == {"detail": "request body larger than 64 KiB"}
    # Declared too large: refused before a single chunk.
    sent = _post(app, "/api/agents/enrol", _zeros(2 << 20),
                 {"content-type": "application/json", "content-length": str(2 << 20)})
    assert (sent.status, sent.pulled) == (413, 0)
    assert _count(engine, agents) == 0  # nobody enrolled


def test_other_json_bodies_are_refused_past_1_mib(app: FastAPI, engine: Engine) -> None:
    token, _ = create_api_token(engine, user="admin", role=Role.ADMIN, name="t")
    sent = _post(app, "/api/groups", _zeros(4 << 20),
                 {"content-type": "application/json", "authorization": f"Bearer {token}"})
    assert (sent.status, sent.pulled) == (413, 17)  # 16 chunks are 1 MiB exactly
    assert sent.json() == {"detail": "request body larger than 1 MiB"}


def test_chunked_inventory_over_the_limit_stores_nothing(app: FastAPI, engine: Engine,
                                                          shared_data: Path) -> None:
    token, _ = create_api_token(engine, user="sato", role=Role.ANALYST, name="t")
    auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    sent = _post(app, "/api/inventories", _zeros(8 << 20), auth)
    assert (sent.status, sent.pulled) == (413, 17)
    assert sent.json() == {"detail": "inventory larger than 1 MiB"}
    assert (_count(engine, inventories), _count(engine, jobs)) == (0, 0)
    # Unauthenticated: 401 without a chunk read.
    sent = _post(app, "/api/inventories", _zeros(8 << 20), {})
    assert (sent.status, sent.pulled) == (401, 0)
    # Within the limit it is stored (the control).
    body = _inventory(shared_data)
    sent = _post(app, "/api/inventories", iter([body[:1000], body[1000:]]), auth)
    assert sent.status == 202, sent.body
    assert (_count(engine, inventories), _count(engine, jobs)) == (1, 1)


# --- gzip and other content codings -----------------------------------------------------

def test_gzip_bodies(client: TestClient, engine: Engine, shared_data: Path) -> None:
    token, _ = create_api_token(engine, user="sato", role=Role.ANALYST, name="t")
    auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    body = gzip.compress(_inventory(shared_data))

    def post(data: bytes, coding: str) -> httpx.Response:
        return client.post("/api/inventories", content=data,
                           headers={**auth, "content-encoding": coding})

    answer = post(body + b"junk", "gzip")
    assert answer.status_code == 400
    assert answer.json() == {"detail": "bad gzip body: 4 bytes after the end of the gzip "
                                       "stream"}
    answer = post(body + gzip.compress(b"{}"), "gzip")  # a second member
    assert answer.status_code == 400
    answer = post(body[:-10], "gzip")
    assert answer.json() == {"detail": "bad gzip body: the body ends before the gzip stream "
                                       "does"}
    answer = post(b"not gzip at all", "gzip")
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("bad gzip body: Error -3 ")
    # A gzip bomb: 8 KiB that inflate to 16 MiB stop at the 1 MiB limit.
    bomb = gzip.compress(b"\0" * (16 << 20), 9)
    assert len(bomb) < 32 << 10
    answer = post(bomb, "gzip")
    assert (answer.status_code, answer.json()) == (413, {"detail": "inventory larger than "
                                                                   "1 MiB"})
    deflated = zlib.compress(_inventory(shared_data))
    for coding in ("deflate", "br", "x-unknown"):
        answer = post(deflated, coding)
        assert answer.status_code == 415
        assert answer.json() == {"detail": f"Content-Encoding {coding!r} is not supported "
                                           "here: send identity or gzip"}
    assert (_count(engine, inventories), _count(engine, jobs)) == (0, 0)
    answer = post(body, "GZIP")
    assert answer.status_code == 202, answer.text
    assert (_count(engine, inventories), _count(engine, jobs)) == (1, 1)


def test_gzip_is_refused_where_it_is_not_read(client: TestClient, engine: Engine) -> None:
    token, _ = create_api_token(engine, user="admin", role=Role.ADMIN, name="t")
    answer = client.post("/api/assets/import", content=gzip.compress(b"[]"),
                         headers={"authorization": f"Bearer {token}",
                                  "content-type": "application/json",
                                  "content-encoding": "gzip"})
    assert (answer.status_code, answer.json()) == (415, {
        "detail": "Content-Encoding 'gzip' is not supported here: send identity"})


# --- the upload forms: session and CSRF before the file ---------------------------------

def _multipart(fields: list[tuple[str, str]], file: tuple[str, Iterator[bytes]] | None
               ) -> Iterator[bytes]:
    """A multipart/form-data body (boundary ``b0undary``), the file's content streamed."""
    for name, value in fields:
        yield (f'--b0undary\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
               f"{value}\r\n").encode()
    if file is not None:
        yield (f'--b0undary\r\nContent-Disposition: form-data; name="file"; '
               f'filename="{file[0]}"\r\nContent-Type: application/json\r\n\r\n').encode()
        yield from file[1]
        yield b"\r\n"
    yield b"--b0undary--\r\n"


FORM = {"content-type": "multipart/form-data; boundary=b0undary"}


def _cookies(client: TestClient) -> str:
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def test_chunked_upload_over_the_limit_is_refused_at_the_limit(
        app: FastAPI, client: TestClient, engine: Engine) -> None:
    csrf = _login(client, engine)
    body = _multipart([("csrf", csrf), ("asset", "plant1-orders-node")],
                      ("package-lock.json", _zeros(8 << 20)))
    sent = _post(app, "/assets/upload", body, FORM, _cookies(client))
    assert sent.status == 413
    assert "package-lock.json: The file is larger than 1 MB." in sent.body.decode()
    # 2 field chunks, the file's part header, then 17 chunks of 64 KiB pass 1 MiB.
    assert sent.pulled == 2 + 1 + 17
    assert (_count(engine, assets), _count(engine, inventories), _count(engine, jobs)) \
        == (0, 0, 0)


def test_upload_without_the_csrf_token_is_refused_before_the_file(
        app: FastAPI, client: TestClient, engine: Engine, shared_data: Path) -> None:
    csrf = _login(client, engine)
    cookies = _cookies(client)
    # No token: refused at the file part's header, the file itself never pulled.
    sent = _post(app, "/assets/upload",
                 _multipart([("asset", "x")], ("package-lock.json", _zeros(8 << 20))),
                 FORM, cookies)
    assert (sent.status, sent.pulled) == (403, 2)
    assert "CSRF" in sent.body.decode()
    # A wrong token: refused as soon as its part has arrived.
    sent = _post(app, "/assets/upload",
                 _multipart([("csrf", "forged"), ("asset", "x")],
                            ("package-lock.json", _zeros(8 << 20))), FORM, cookies)
    assert sent.status == 403 and sent.pulled <= 2
    # A wrong X-CSRF-Token header: refused before a byte of the body.
    sent = _post(app, "/assets/upload",
                 _multipart([("csrf", csrf)], ("package-lock.json", _zeros(8 << 20))),
                 {**FORM, "x-csrf-token": "forged"}, cookies)
    assert (sent.status, sent.pulled) == (403, 0)
    # No session: to the login page, nothing read.
    sent = _post(app, "/assets/upload",
                 _multipart([("csrf", csrf)], ("package-lock.json", _zeros(8 << 20))), FORM)
    assert (sent.status, sent.pulled) == (303, 0)
    assert sent.headers["location"].startswith("/login")
    assert _count(engine, inventories) == 0
    # The right token in the header (a script's way) or first in the form: stored.
    lock = (shared_data / NPM_LOCK).read_bytes()
    sent = _post(app, "/assets/upload",
                 _multipart([("asset", "plant1-orders-node")],
                            ("package-lock.json", iter([lock]))),
                 {**FORM, "x-csrf-token": csrf}, cookies)
    assert sent.status == 303, sent.body
    sent = _post(app, "/assets/upload",
                 _multipart([("csrf", csrf), ("asset", "plant1-other-node")],
                            ("package-lock.json", iter([lock[:5000], lock[5000:]]))),
                 FORM, cookies)
    assert sent.status == 303, sent.body
    assert _count(engine, inventories) == 2
    with engine.connect() as conn:
        assert sorted(conn.execute(select(audit_log.c.target).where(
            audit_log.c.action == "inventory.upload")).scalars()) == [
            "plant1-orders-node", "plant1-other-node"]


def test_cmdb_form_checks_csrf_before_the_file(app: FastAPI, client: TestClient,
                                               engine: Engine) -> None:
    _login(client, engine, Role.ADMIN)
    sent = _post(app, "/assets/import",
                 _multipart([], ("cmdb.csv", _zeros(8 << 20))), FORM, _cookies(client))
    assert (sent.status, sent.pulled) == (403, 1)


# --- security headers -------------------------------------------------------------------

def test_security_headers(client: TestClient, engine: Engine) -> None:
    page = client.get("/login")
    api = client.get("/api/health")
    static = client.get("/static/app.css")
    for answer in (page, api, static):
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert "strict-transport-security" not in answer.headers  # plain http
    assert "script-src 'self';" in CSP and "frame-ancestors 'none'" in CSP
    assert page.headers["cache-control"] == "no-store"
    assert api.headers["cache-control"] == "no-store"
    assert "cache-control" not in static.headers  # public files may be cached
    assert client.get("/static/plotly.min.js").headers["cache-control"] \
        == "public, max-age=86400"
    # A refusal carries them too; an authenticated page and API answer are not stored.
    _login(client, engine)
    assert client.get("/overview").headers["cache-control"] == "no-store"
    refused = client.post("/login", content=b"x" * (65 << 10),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 413
    assert refused.headers["x-frame-options"] == "DENY"
    assert "request body larger than 64 KiB" in refused.text  # the HTML error page


def test_hsts_only_over_https(app: FastAPI) -> None:
    with TestClient(app, base_url="https://testserver") as secure:
        for path in ("/login", "/api/health", "/static/app.css"):
            assert secure.get(path).headers["strict-transport-security"] \
                == "max-age=31536000"


def test_api_docs_keep_working(client: TestClient) -> None:
    # Swagger UI comes from its CDN with an inline start-up script: only /api/docs may.
    policy = client.get("/api/docs").headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in policy
    assert "frame-ancestors 'none'" in policy


# --- a real server ------------------------------------------------------------------------

def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    assert found
    return int(found.group(1))


def test_real_server_stops_reading_an_oversized_body(database_url: str, tmp_path: Path,
                                                    engine: Engine) -> None:
    env = {**env_for(database_url, tmp_path / "home"), "PATCHPILOT_MAX_UPLOAD_MB": "1"}
    token = patchpilot("token", "create", "--role", "analyst", env=env).stdout.strip()
    server = ServerProcess(env, workers=0).start()
    try:
        assert server.proc is not None
        before = _rss_kib(server.proc.pid)
        for path, headers in (("/api/agents/enrol", {}),
                              ("/api/inventories", {"authorization": f"Bearer {token}"})):
            pulled = 0

            def body() -> Iterator[bytes]:
                nonlocal pulled
                for _ in range(4096):  # 256 MiB if it were all read
                    pulled += 1
                    yield b"0" * CHUNK

            answer = httpx.post(server.url + path, content=body(), timeout=30,
                                headers={"content-type": "application/json", **headers})
            assert answer.status_code == 413, answer.text
            # What the kernel's socket buffers took before the server closed the
            # connection, far from the 4096 chunks offered.
            assert pulled < 512, pulled
        assert _rss_kib(server.proc.pid) - before < 64 << 10  # not 256 MiB
    finally:
        server.stop()
    assert (_count(engine, inventories), _count(engine, jobs)) == (0, 0)
