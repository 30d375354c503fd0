"""PatchPilot behind the real nginx with TLS: the example configuration itself, tested.

Each test starts ``patchpilot server`` on a free loopback port and Debian's nginx with
``packaging/nginx/patchpilot.conf``, changed only where a test must (listen addresses and
ports, certificate paths, the upstream's port), inside a main configuration of the test's
own: every path nginx writes (pid, logs, temporary files) is in a temporary folder, and the
system's nginx configuration is never read.  The certificate is signed by a test CA made
here with ``cryptography``.

The browser-like client connects from 127.0.0.2: nginx (on 127.0.0.1) sees that address,
and the server sees nginx's 127.0.0.1, the one trusted proxy (``PATCHPILOT_TRUSTED_PROXIES``)
-- so the address the server records is observably the real client's, not the proxy's.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from patchpilot.agent.runtime import Agent, AgentConfig, AgentError
from patchpilot.config import load_settings
from patchpilot.db.engine import make_engine
from patchpilot.db.tables import audit_log, login_throttle, web_sessions
from patchpilot.errors import ConfigError
from patchpilot.server.app import create_app
from patchpilot.server.headers import HSTS
from patchpilot.server.web import session
from tests.builders.processes import ServerProcess, env_for, free_port, patchpilot
from tests.builders.sessions import SECRET, page_csrf
from tests.conftest import REPO, pg_schema_url
from tests.slapd import make_ca, server_cert

NGINX = Path("/usr/sbin/nginx")
EXAMPLE = REPO / "packaging" / "nginx" / "patchpilot.conf"
CLIENT = "127.0.0.2"  # where the test's browser-like client connects from
PASSWORD = "Tls-Test-Pw-3a9e"
FORGED = "203.0.113.9"  # a documentation address (RFC 5737) a client claims to be


def _nginx_or_skip() -> None:
    """Skip without nginx -- except under CI=true, where that fails the run."""
    if NGINX.exists():
        return
    problem = f"{NGINX} is missing (apt-get install nginx)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"cannot start nginx under CI=true: {problem}")
    pytest.skip(problem)


def render_example(*, http_port: int, https_port: int, app_port: int, chain: Path,
                   key: Path) -> str:
    """The example configuration with the test's ports and certificate: each line changed
    is found exactly once, so the example cannot drift away from what is tested."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in (
            ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"),
            ("    listen [::]:80;\n", ""),
            ("    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{https_port} ssl http2;\n"),
            ("    listen [::]:443 ssl http2;\n", ""),
            ("/etc/ssl/patchpilot/fullchain.pem;", f"{chain};"),
            ("/etc/ssl/patchpilot/privkey.pem;", f"{key};"),
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{app_port};"),
            # Off port 443 the redirect must name the port.
            ("return 301 https://$host$request_uri;",
             f"return 301 https://$host:{https_port}$request_uri;")):
        assert text.count(old) == 1, f"{EXAMPLE}: expected {old!r} once"
        text = text.replace(old, new)
    return text


def _main_config(folder: Path, site: Path) -> Path:
    """nginx.conf around the site: foreground, everything it writes under ``folder``."""
    # As root nginx would hand its workers to "nobody", who cannot enter the folder: the
    # test's own user runs every process, as when a user runs the test.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    path = folder / "nginx.conf"
    path.write_text(f"""{user}daemon off;
worker_processes 1;
pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} notice;
events {{ worker_connections 128; }}
http {{
    access_log {folder / 'access.log'};
{temp}
    include {site};
}}
""")
    return path


@dataclass
class Site:
    """PatchPilot behind nginx: URLs, the CA, the credentials the tests use."""

    url: str  # https, through nginx
    http_url: str  # nginx's plain-HTTP redirect
    app_url: str  # the server itself, bypassing nginx
    ca_file: Path
    other_ca: Path  # a CA that signed nothing here
    env: dict[str, str]
    admin: str  # an admin API token
    enrol: str  # an agent enrolment token
    database_url: str

    def client(self, **kwargs: object) -> httpx.Client:
        """A client through nginx from ``CLIENT``, trusting the test CA."""
        context = ssl.create_default_context(cafile=self.ca_file)
        transport = httpx.HTTPTransport(verify=context, local_address=CLIENT)
        return httpx.Client(base_url=self.url, transport=transport, timeout=30, **kwargs)


class Nginx:
    """nginx in the foreground with a configuration of the test's; stopped by its id."""

    def __init__(self, folder: Path, config: Path, port: int) -> None:
        self.folder, self.config, self.port = folder, config, port
        self.process: subprocess.Popen[bytes] | None = None

    def _args(self) -> list[str]:
        # -e: the error log from the first line on (else /var/log/nginx/error.log).
        return [str(NGINX), "-p", f"{self.folder}/", "-c", str(self.config), "-e",
                str(self.folder / "error.log")]

    def start(self) -> Nginx:
        """Check the configuration (``nginx -t``), start, wait until it listens."""
        checked = subprocess.run([*self._args(), "-t"], capture_output=True, text=True,
                                 timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen within 15 s: {self.log()}")

    def log(self) -> str:
        """The end of nginx's error log."""
        path = self.folder / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop the nginx this test started (SIGQUIT: finish the requests, then exit)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Site]:
    """The server (trusting 127.0.0.1 as its proxy) behind nginx, and a user "sato"; one
    per backend for the module's tests (each starts a server and runs the CLI: slow)."""
    _nginx_or_skip()
    root = tmp_path_factory.mktemp(f"nginx-{request.param}")
    schema = pg_schema_url() if request.param == "postgresql" else None
    database_url = next(schema) if schema else f"sqlite:///{root / 'patchpilot.db'}"
    certs = root / "certs"
    certs.mkdir()
    ca_file, ca_key, ca_cert = make_ca(certs, "test-ca")
    other_ca, _, _ = make_ca(certs, "other-ca")
    # The test CA signs the server's certificate itself: the chain is that one (a real one
    # adds the intermediates, never the root).
    chain, key = server_cert(certs, ca_key, ca_cert,
                             names=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                    x509.DNSName("localhost")],
                             files=("fullchain.pem", "privkey.pem"))
    env = {**env_for(database_url, root / "home"), "PATCHPILOT_TRUSTED_PROXIES": "127.0.0.1"}
    admin = patchpilot("token", "create", "--role", "admin", env=env).stdout.strip()
    enrol = patchpilot("enrol-token", "create", "--uses", "5", env=env).stdout.strip()
    patchpilot("user", "create", "sato", "--role", "analyst", "--password-env", "PP_TEST_PW",
               env={**env, "PP_TEST_PW": PASSWORD})
    server = ServerProcess(env).start()
    folder = root / "nginx"
    folder.mkdir()
    http_port, https_port = free_port(), free_port()
    conf = folder / "patchpilot.conf"
    conf.write_text(render_example(http_port=http_port, https_port=https_port,
                                   app_port=server.port, chain=chain, key=key))
    nginx = Nginx(folder, _main_config(folder, conf), https_port)
    try:
        nginx.start()
        yield Site(f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}",
                   server.url, ca_file, other_ca, env, admin, enrol, database_url)
    finally:
        nginx.stop()
        server.stop()
        if schema:
            next(schema, None)  # drops the schema


def _session_cookie(answer: httpx.Response) -> str:
    [found] = [c for c in answer.headers.get_list("set-cookie")
               if c.startswith(session.COOKIE + "=")]
    return found


def _attributes(cookie: str) -> set[str]:
    """A Set-Cookie line's attributes, lower-cased, values dropped."""
    return {part.split("=", 1)[0].strip().lower() for part in cookie.split(";")[1:]}


def _sign_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
    csrf = page_csrf(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf": csrf, "next": "/overview"})


def test_dashboard_and_api_through_nginx(site: Site) -> None:
    with site.client() as browser:
        login = browser.get("/login")
        assert login.status_code == 200
        # One HSTS header, nginx's (the server's copy is dropped), on pages and errors.
        assert login.headers.get_list("strict-transport-security") == [HSTS]
        assert {"secure", "httponly"} <= _attributes(_session_cookie(login))
        signed_in = _sign_in(browser, "sato", PASSWORD)
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/overview")
        cookie = _session_cookie(signed_in)
        assert {"secure", "httponly", "samesite", "path", "max-age"} == _attributes(cookie)
        overview = browser.get("/overview")
        assert overview.status_code == 200
        assert "sato" in overview.text
        assert overview.headers.get_list("strict-transport-security") == [HSTS]
        missing = browser.get("/api/no-such-route")
        assert missing.status_code == 404
        assert missing.headers.get_list("strict-transport-security") == [HSTS]

        # The API with a token.
        agents = browser.get("/api/agents", headers={"Authorization": f"Bearer {site.admin}"})
        assert (agents.status_code, agents.json()) == (200, [])
        assert agents.headers.get_list("strict-transport-security") == [HSTS]
        assert browser.get("/api/agents").status_code == 401

        # A scanner report larger than nginx's default body limit (1 MiB) reaches the
        # server, whose own answer (JSON) says what is wrong with it.
        report = {"file": ("scan.txt", b"no scanner wrote this\n" * (3 << 16))}
        imported = browser.post("/api/imports", files=report,
                                headers={"Authorization": f"Bearer {site.admin}"})
        assert imported.headers["content-type"] == "application/json"
        assert imported.status_code == 422, imported.text

    # Plain HTTP: a redirect to the same path over HTTPS, nothing else.
    redirect = httpx.get(f"{site.http_url}/overview?x=1", timeout=10)
    assert (redirect.status_code, redirect.headers["location"]) == (
        301, f"{site.url}/overview?x=1")
    assert "set-cookie" not in redirect.headers


def test_tls_versions_and_ciphers(site: Site) -> None:
    port = int(site.url.rsplit(":", 1)[1])

    def handshake(context: ssl.SSLContext) -> tuple[str | None, str]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version(), tls.cipher()[0]

    assert handshake(ssl.create_default_context(cafile=site.ca_file))[0] == "TLSv1.3"
    tls12 = ssl.create_default_context(cafile=site.ca_file)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    version, cipher = handshake(tls12)
    [allowed] = re.findall(r"^\s*ssl_ciphers (\S+);$", EXAMPLE.read_text(), re.M)
    assert (version, cipher in allowed.split(":")) == ("TLSv1.2", True)
    # A TLS 1.2 cipher without AEAD (CBC with SHA-1) is refused.
    cbc = ssl.create_default_context(cafile=site.ca_file)
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE|handshake failure"):
        handshake(cbc)


def test_the_real_client_address_behind_the_trusted_proxy(site: Site) -> None:
    engine = make_engine(site.database_url)
    try:
        with site.client() as browser:
            assert _sign_in(browser, "sato", PASSWORD).status_code == 303
            # Five wrong passwords for one name lock it: the lockout's audit row names the
            # client.  It claims another address: nginx replaces the claim with the address
            # it sees.
            browser.headers["X-Forwarded-For"] = FORGED
            for _ in range(5):
                assert _sign_in(browser, "mallory", "wrong").status_code == 401
            assert _sign_in(browser, "mallory", "wrong").status_code == 429

        # Straight to the server from an address it does not trust: the forwarded headers
        # are ignored -- the address is the peer's, and http stays http (no Secure cookie,
        # no HSTS).
        direct_transport = httpx.HTTPTransport(local_address=CLIENT)
        with httpx.Client(base_url=site.app_url, transport=direct_transport, timeout=30,
                          headers={"X-Forwarded-For": FORGED,
                                   "X-Forwarded-Proto": "https"}) as direct:
            login = direct.get("/login")
            assert "secure" not in _attributes(_session_cookie(login))
            assert "strict-transport-security" not in login.headers
            assert _sign_in(direct, "trudy", "wrong").status_code == 401

        with engine.connect() as conn:
            # Every session of the module's tests was opened through nginx.
            assert set(conn.execute(select(web_sessions.c.client)).scalars()) == {CLIENT}
            [lockout] = conn.execute(select(audit_log.c.actor, audit_log.c.action,
                                            audit_log.c.target, audit_log.c.detail)
                                     .where(audit_log.c.action == "login.lockout")).all()
            throttled = dict(conn.execute(select(login_throttle.c.key,
                                                 login_throttle.c.failures)).all())
    finally:
        engine.dispose()
    assert lockout[:3] == ("login-throttle", "login.lockout", "user:mallory")
    detail = json.loads(lockout.detail)
    assert (detail["failures"], detail["client"]) == (5, CLIENT)
    assert throttled == {"user:mallory": 5, "user:trudy": 1, f"addr:{CLIENT}": 6}


def test_agents_verify_the_certificate(site: Site, tmp_path: Path) -> None:
    # The CA from the setting (an agent host's environment file): enrols and uploads.
    agent_env = {**site.env, "PATCHPILOT_AGENT_CA_FILE": str(site.ca_file)}
    ran = patchpilot("agent", "--server", site.url, "--enrol", site.enrol, "--state-dir",
                     str(tmp_path / "agent"), "--name", "plant1-web-01", "--poll-wait", "0",
                     "--once", env=agent_env, check=False)
    assert ran.returncode == 0, ran.stderr
    admin = {"Authorization": f"Bearer {site.admin}"}
    with site.client(headers=admin) as api:
        [agent] = api.get("/api/agents").json()
        assert (agent["name"], agent["asset_id"] is not None) == ("plant1-web-01", True)

        # A sweep asks the agent to confirm, so it stays open: its Server-Sent Events
        # arrive through nginx as they are sent, not when the stream ends.
        sweep = api.post("/api/sweeps", json={"ecosystem": "PyPI", "package": "pygments",
                                              "range": "<2.15.1", "deadline_minutes": 5})
        assert sweep.status_code == 201, sweep.text
        assert sweep.json()["state"] == "running"
        started = time.monotonic()
        with api.stream("GET", f"/api/sweeps/{sweep.json()['id']}/events",
                        timeout=httpx.Timeout(30, read=10)) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = events.iter_lines()
            assert next(lines) == "event: progress"
            assert json.loads(next(lines).removeprefix("data: "))["state"] == "running"
        assert time.monotonic() - started < 10

    # No CA given: the system's CAs do not know the test CA, and the agent says so.
    refused = patchpilot("agent", "--server", site.url, "--enrol", site.enrol, "--state-dir",
                         str(tmp_path / "stranger"), "--poll-wait", "0", "--once",
                         env=site.env, check=False)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: the server's TLS certificate at {site.url} was refused: unable to get "
        "local issuer certificate (checked against the system's trusted CAs); if a private "
        "CA signed it, give that CA's certificate (PEM) with --ca-file or "
        "PATCHPILOT_AGENT_CA_FILE")
    assert not (tmp_path / "stranger" / "credential.json").exists()

    # Another CA given (--ca-file): refused as well, naming the file it checked against.
    stranger = Agent(AgentConfig(server=site.url, state_dir=tmp_path / "other",
                                 enrol_token=site.enrol, ca_file=site.other_ca))
    with pytest.raises(AgentError, match=re.escape(
            f"was refused: unable to get local issuer certificate (checked against the CA "
            f"certificates in {site.other_ca})")):
        stranger.ensure_enrolled()
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(AgentError, match=re.escape(
            f"CA file {missing} (--ca-file / PATCHPILOT_AGENT_CA_FILE) does not exist")):
        Agent(AgentConfig(server=site.url, state_dir=tmp_path / "other", ca_file=missing))


def test_trusted_proxies_setting() -> None:
    settings = load_settings({"PATCHPILOT_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"})
    assert settings.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    assert load_settings({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="PATCHPILOT_TRUSTED_PROXIES: 'nginx' is not"):
        load_settings({"PATCHPILOT_TRUSTED_PROXIES": "nginx"})


@pytest.mark.parametrize(("trusted", "seen", "secure"), [
    ((), "127.0.0.1", False),  # the default: nobody's forwarded headers are believed
    (("127.0.0.0/8",), FORGED, True),
])
def test_forwarded_headers_only_from_a_trusted_proxy(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, trusted: tuple[str, ...], seen: str,
        secure: bool) -> None:
    monkeypatch.delenv("PATCHPILOT_TRUSTED_PROXIES", raising=False)
    monkeypatch.setenv("PATCHPILOT_SESSION_SECRET", SECRET)
    app = create_app(engine, trusted_proxies=trusted or None)
    forwarded = {"X-Forwarded-For": FORGED, "X-Forwarded-Proto": "https"}
    with TestClient(app, client=("127.0.0.1", 40000), headers=forwarded,
                    follow_redirects=False) as client:
        login = client.get("/login")
        assert ("secure" in _attributes(_session_cookie(login))) is secure
        assert ("strict-transport-security" in login.headers) is secure
        # The client speaks http to the server, as a proxy does: a Secure cookie is sent
        # back by hand, as the browser sends it over https.
        csrf = page_csrf(login.text)
        client.cookies.set(session.COOKIE, _session_cookie(login).split(";")[0].split("=", 1)[1])
        failed = client.post("/login", data={"username": "nobody-here", "password": "x",
                                             "csrf": csrf})
        assert failed.status_code == 401
    with engine.connect() as conn:
        assert set(conn.execute(select(login_throttle.c.key)).scalars()) == {
            "user:nobody-here", f"addr:{seen}"}
