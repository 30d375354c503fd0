"""The WinRM transport, as far as it can be honestly checked without a Windows host.

What is real here: pywinrm's session built as the transport builds it (HTTPS endpoint,
certificate validation on, the CA file), a refused connection on a loopback port, and a
real HTTPS server on loopback (``http.server`` wrapped in TLS with a certificate made by
``openssl`` for 127.0.0.1) that answers every request with 401 -- enough to see the
certificate check refuse an unknown CA, the CA file make it pass, a refusal of the
credentials become ``auth failed``, and the password never reach a message or a log.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from patchpilot.inventory.transports.ssh import HostStatus
from patchpilot.inventory.transports.winrm import (
    WinRmOptions,
    WinRmOptionsError,
    WinRmTarget,
    protocol_for,
    scan_hosts_sync,
)
from tests.sshd import free_port

SECRET = "correct horse battery staple"


def test_session_options() -> None:
    target = WinRmTarget.parse("CORP\\svc-patch@win01.corp.example")
    assert (target.host, target.port, target.user) == ("win01.corp.example", 5986,
                                                        "CORP\\svc-patch")
    protocol = protocol_for(target, WinRmOptions(password=SECRET, command_timeout=90))
    transport = protocol.transport
    assert transport.endpoint == "https://win01.corp.example:5986/wsman"
    assert transport.server_cert_validation == "validate"
    assert transport.auth_method == "ntlm"
    assert transport.username == "CORP\\svc-patch"
    assert transport.read_timeout_sec == 90
    assert protocol.read_timeout_sec == 90
    assert protocol.operation_timeout_sec == 20
    session = transport.build_session()
    assert session.verify is True  # requests' own CA bundle; no environment override
    assert session.proxies == {"no_proxy": "*"}
    assert SECRET not in repr(WinRmOptions(password=SECRET))


def test_ca_file_and_kerberos(tmp_path: Path) -> None:
    ca = tmp_path / "corp-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    target = WinRmTarget.parse("[fd00::5]:15986")
    protocol = protocol_for(target, WinRmOptions(auth="kerberos", ca_file=ca))
    assert protocol.transport.endpoint == "https://[fd00::5]:15986/wsman"
    assert protocol.transport.auth_method == "kerberos"
    assert protocol.transport.ca_trust_path == str(ca)


@pytest.mark.parametrize(("options", "message"), [
    (WinRmOptions(auth="credssp", password="x"), "--auth credssp: not one of ntlm, kerberos, "
                                                 "basic"),
    (WinRmOptions(), "--auth ntlm needs a password (--password-env)"),
    (WinRmOptions(password="x", ca_file=Path("/nonexistent/ca.pem")),
     "--ca-file /nonexistent/ca.pem: not a readable file"),
    (WinRmOptions(password="x", max_concurrent=0), "--max-concurrent must be at least 1"),
])
def test_options_refused_before_connecting(options: WinRmOptions, message: str) -> None:
    with pytest.raises(WinRmOptionsError) as caught:
        scan_hosts_sync([WinRmTarget("127.0.0.1", free_port())], options)
    assert str(caught.value) == message


@pytest.mark.parametrize("text", ["", "user@", "host:99999", "a b", "@host"])
def test_target_parse_rejects(text: str) -> None:
    with pytest.raises(WinRmOptionsError, match="^target: "):
        WinRmTarget.parse(text)


def test_refused_connection_names_host_and_port(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    [result] = scan_hosts_sync([WinRmTarget("127.0.0.1", port, "Administrator")],
                               WinRmOptions(password=SECRET))
    assert result.status is HostStatus.unreachable
    assert result.error == f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert SECRET not in caplog.text


# --- a real HTTPS server on loopback -------------------------------------------------------

@dataclass
class Https:
    port: int
    ca: Path
    requests: list[dict[str, str]]


class _Refuse(BaseHTTPRequestHandler):
    """Answers every POST with 401, remembering its headers (no body is read back)."""

    seen: list[dict[str, str]]

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append(dict(self.headers))
        self.send_response(401)
        # What a WinRM listener offers (a Negotiate/NTLM client's first, empty-handed
        # request gets the same answer).
        for scheme in ("Negotiate", "Basic realm=\"WSMAN\""):
            self.send_header("WWW-Authenticate", scheme)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Https]:
    folder = tmp_path_factory.mktemp("winrm-tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    seen: list[dict[str, str]] = []
    handler = type("Refuse", (_Refuse,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Https(server.server_address[1], cert, seen)
    server.shutdown()
    server.server_close()


def test_unknown_certificate_is_refused(https: Https, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    https.requests.clear()
    [result] = scan_hosts_sync([WinRmTarget("127.0.0.1", https.port, "Administrator")],
                               WinRmOptions(auth="basic", password=SECRET))
    assert result.status is HostStatus.host_key_refused
    assert result.error == (f"the TLS certificate of 127.0.0.1:{https.port} is not trusted "
                            "(or does not name the host): give the CA that signed it with "
                            "--ca-file")
    assert https.requests == []  # nothing was sent to a server not trusted
    assert SECRET not in caplog.text


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_refused_credentials_over_a_trusted_certificate(
        https: Https, auth: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    https.requests.clear()
    [result] = scan_hosts_sync([WinRmTarget("127.0.0.1", https.port, "Administrator")],
                               WinRmOptions(auth=auth, password=SECRET, ca_file=https.ca))
    assert result.status is HostStatus.auth_failed
    assert result.error is not None
    assert result.error.startswith(f"127.0.0.1:{https.port} refused the credentials")
    assert https.requests and https.requests[0]["Host"] == f"127.0.0.1:{https.port}"
    schemes = [r.get("Authorization", "(none)").split()[0] for r in https.requests]
    assert schemes == (["Basic"] if auth == "basic" else ["(none)", "Negotiate"])
    assert SECRET not in caplog.text
    assert SECRET not in result.error
    assert "NTLM step" not in caplog.text  # pyspnego's tokens stay out of the log


def test_cli_scan_winrm_refused_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from patchpilot.cli import app

    port = free_port()
    monkeypatch.setenv("WINRM_PASSWORD", SECRET)
    done = CliRunner().invoke(app, ["scan", "winrm", f"Administrator@127.0.0.1:{port}",
                                    "--password-env", "WINRM_PASSWORD", "--format", "json"])
    assert done.exit_code == 4, done.output
    assert SECRET not in done.output
    assert f"unreachable Administrator@127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}: " \
           "Connection refused" in " ".join(done.output.split())
