"""A small OpenID Connect provider on a loopback port, for the sign-in tests.

A real HTTP server in a thread (like tests/sshd.py's real sshd): it serves the discovery
document, a JWKS with a freshly generated RSA key, ``/authorize`` (which approves the
configured test user at once and redirects back with a code), ``/token`` (which checks the
client secret, the redirect URI and the PKCE verifier before answering with an ID token
signed by that key) and ``/logout`` (the end-session endpoint).  ``tamper`` lets a test
change the next ID token's claims or sign it with another key, to see each refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "patchpilot-test"
CLIENT_SECRET = "oidc-client-secret-" + "y" * 20


@dataclass
class IdpUser:
    """The user /authorize approves: the claims that go into the ID token."""

    sub: str
    preferred_username: str
    groups: list[str]
    email: str | None = None


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    user: IdpUser


@dataclass
class Provider:
    """The provider's state: who is approved, the codes issued, the key, what a test
    asked to tamper with."""

    user: IdpUser = field(default_factory=lambda: IdpUser("u-1", "alice", []))
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(
        2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"}))
    codes: dict[str, _Code] = field(default_factory=dict)
    tamper: dict[str, Any] = field(default_factory=dict)  # claim overrides; "key": another
    token_requests: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def id_token(self, code: _Code) -> str:
        """The signed ID token for a redeemed code (with any ``tamper`` applied)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url, "sub": code.user.sub, "aud": code.client_id, "iat": now,
            "exp": now + 300, "nonce": code.nonce,
            "preferred_username": code.user.preferred_username, "groups": code.user.groups}
        if code.user.email:
            claims["email"] = code.user.email
        overrides = dict(self.tamper)
        key = overrides.pop("key", self.key)
        claims.update(overrides)
        return jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, key)


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet test output

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, {
                    "issuer": provider.url,
                    "authorization_endpoint": provider.url + "/authorize",
                    "token_endpoint": provider.url + "/token",
                    "jwks_uri": provider.url + "/jwks",
                    "end_session_endpoint": provider.url + "/logout",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"]})
            elif url.path == "/jwks":
                self._json(200, {"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                if (query.get("response_type") != "code"
                        or query.get("code_challenge_method") != "S256"
                        or "openid" not in query.get("scope", "").split()):
                    self._json(400, {"error": "invalid_request"})
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = _Code(query["client_id"], query["redirect_uri"],
                                             query.get("nonce", ""), query["code_challenge"],
                                             provider.user)
                self._redirect(query["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": query.get("state", "")}))
            elif url.path == "/logout":
                provider.logouts.append(query)
                self._redirect(query.get("post_logout_redirect_uri", provider.url))
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            provider.token_requests.append(form)
            basic = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(
                f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if basic != expected:
                self._json(401, {"error": "invalid_client"})
                return
            code = provider.codes.pop(form.get("code", ""), None)
            if code is None or form.get("redirect_uri") != code.redirect_uri:
                self._json(400, {"error": "invalid_grant"})
                return
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
                self._json(400, {"error": "invalid_grant",
                                 "error_description": "PKCE verifier mismatch"})
                return
            self._json(200, {"access_token": secrets.token_urlsafe(16),
                             "token_type": "Bearer", "expires_in": 300,
                             "id_token": provider.id_token(code)})

    return Handler


class ProviderServer:
    """The provider listening on 127.0.0.1 in a thread; ``with`` starts and stops it."""

    def __init__(self, user: IdpUser | None = None) -> None:
        self.provider = Provider(user=user) if user else Provider()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.provider))
        self.provider.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The issuer (base URL)."""
        return self.provider.url

    def __enter__(self) -> Provider:
        self.thread.start()
        return self.provider

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
