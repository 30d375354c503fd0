"""The actions' HTTP helper sends to the very address it checked (no DNS rebinding between
the SSRF check and the connection), with the host name in ``Host``, in the TLS server name
and in the certificate check.  Loopback HTTP(S) servers; a host name that resolves to
127.0.0.1 (``localhost``), and a resolver that answers differently the second time."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchpilot.automation.actions import DeliveryError, DeliverySettings
from patchpilot.automation.actions._http import check_target, request
from patchpilot.reports.mail import SmtpSettings

LOOPBACK = DeliverySettings(SmtpSettings(), allow_networks=(
    ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")))
REAL_GETADDRINFO = socket.getaddrinfo


class Server:
    """An HTTP(S) server on one loopback address that keeps the requests' Host headers."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.hosts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.hosts.append(str(self.headers["Host"]))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer  # noqa: N815 - the stdlib's names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer((address, port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def test_a_name_resolving_to_loopback_is_refused_unless_allowed(server: Server) -> None:
    url = f"http://localhost:{server.port}/hook?token=t-secret"
    with pytest.raises(DeliveryError) as refused:
        request("POST", url, DeliverySettings(SmtpSettings()), what="webhook", content=b"{}")
    assert str(refused.value) == (
        "webhook: localhost resolves to 127.0.0.1, an internal address; refused (allow its "
        "range with PATCHPILOT_WEBHOOK_ALLOW_NETWORKS)")
    assert server.hosts == []
    answer = request("POST", url, LOOPBACK, what="webhook", content=b"{}")
    assert (answer.status_code, answer.text) == (200, "ok")
    # The server was reached at the checked address, and told the name.
    assert server.hosts == [f"localhost:{server.port}"]
    assert check_target(url, LOOPBACK) == [ipaddress.ip_address("127.0.0.1")]


def _rebinding_pair() -> tuple[Server, Server]:
    """A server on 127.0.0.1 (the address checked) and one on 127.0.0.2 (the internal one
    a second resolution answers), on the same port."""
    for _ in range(20):
        internal = Server("127.0.0.2")
        try:
            return Server("127.0.0.1", internal.port), internal
        except OSError:
            internal.stop()  # that port is taken on 127.0.0.1: another pair
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


def test_the_connection_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    checked, internal = _rebinding_pair()
    asked: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.test":
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        # A short-TTL name: allowed the first time, internal ever after.
        asked.append(host)
        answer = "127.0.0.1" if len(asked) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    only_checked = DeliverySettings(SmtpSettings(),
                                    allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    url = f"http://rebind.test:{checked.port}/hook"
    try:
        assert request("POST", url, only_checked, what="webhook").status_code == 200
        assert (asked, checked.hosts, internal.hosts) == (
            ["rebind.test"], [f"rebind.test:{checked.port}"], [])
        # What resolving again (httpx on its own, as before) would have done.
        assert httpx.post(url).status_code == 200
        assert internal.hosts == [f"rebind.test:{checked.port}"]
        # The check itself refuses the internal answer.
        with pytest.raises(DeliveryError, match="resolves to 127.0.0.2, an internal"):
            request("POST", url, only_checked, what="webhook")
        assert len(checked.hosts) == 1
    finally:
        checked.stop()
        internal.stop()


def _certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for the DNS name ``name`` only (no IP address in it):
    the server's TLS context, and a client's that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert_file, key_file)
    return served, ssl.create_default_context(cafile=str(cert_file))


def test_tls_names_and_checks_the_host_not_the_address(tmp_path: Path) -> None:
    served, trusted = _certificate(tmp_path, "localhost")
    tls = Server(tls=served)
    try:
        # The certificate names "localhost" only: the check passes because the name, not
        # the IP connected to, is what is checked (and sent as SNI).
        answer = request("GET", f"https://localhost:{tls.port}/", LOOPBACK, what="webhook",
                         verify=trusted)
        assert (answer.status_code, tls.hosts) == (200, [f"localhost:{tls.port}"])
    finally:
        tls.stop()
    served, trusted = _certificate(tmp_path, "other.example")
    other = Server(tls=served)
    try:
        with pytest.raises(DeliveryError) as refused:
            request("GET", f"https://localhost:{other.port}/", LOOPBACK, what="webhook",
                    verify=trusted)
        assert str(refused.value).startswith("webhook: localhost: ConnectError: ")
        assert "Hostname mismatch, certificate is not valid for 'localhost'" in str(
            refused.value)
        assert other.hosts == []
    finally:
        other.stop()
