"""OpenID Connect sign-in: the authorization code flow with PKCE, as a relying party.

The flow (OpenID Connect Core 1.0 §3.1, RFC 7636):

1. :func:`discover` reads the provider's ``/.well-known/openid-configuration`` (OpenID
   Connect Discovery 1.0 §4) -- its endpoints and its JWKS -- and keeps it an hour.
2. :func:`start` makes a fresh ``state`` (checked on the way back: no forged callback),
   ``nonce`` (checked in the ID token: no replayed token) and PKCE verifier, and the
   provider's authorization URL with the verifier's S256 challenge.  The three travel in a
   signed, short-lived cookie of the browser that started (``web.session.write_signed``).
3. :func:`finish` checks the state, trades the code (with the client secret and the
   verifier) for tokens at the token endpoint, checks the ID token's signature against
   the provider's JWKS and its claims -- issuer, audience, expiry, nonce (authlib's
   ``CodeIDToken``) -- and returns the :class:`Identity` the directory map is applied to
   (``server.directory.sign_in_directory_user``).

Every refusal is an :class:`OidcError` (an AuthError) whose message says what was wrong;
the client secret never appears in one, nor in a log line.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.automation.secrets import key_of, read_secret
from patchpilot.config import Settings
from patchpilot.db.tables import users
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.server.security import AuthError

SOURCE = "oidc"  # users.source of the users signed in here
# Signatures an ID token may carry: asymmetric only (an HS256 token would be signed with
# the client secret, which the provider's JWKS cannot vouch for).
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
              "ES512", "EdDSA"]
SCOPES = "openid profile email"
DISCOVERY_TTL = 3600.0  # seconds a provider's discovery document and JWKS are kept
LEEWAY = 60  # seconds of clock skew allowed on exp / iat
TIMEOUT = 10.0  # seconds for each call to the provider
PENDING_SECONDS = 600  # a sign-in must come back from the provider within ten minutes


class OidcError(AuthError):
    """An OpenID Connect sign-in refused; the message says why (shown on the login
    page)."""


@dataclass(frozen=True, slots=True)
class Client:
    """PatchPilot as a client of the provider (from the settings)."""

    issuer: str
    client_id: str
    groups_claim: str
    name: str  # shown on the login button

    @property
    def discovery_url(self) -> str:
        """The issuer's discovery document (Discovery §4: issuer + the well-known path)."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def client_of(settings: Settings) -> Client | None:
    """The configured client; None when ``PATCHPILOT_OIDC_ISSUER`` is unset."""
    if not settings.oidc_issuer or not settings.oidc_client_id:
        return None
    name = settings.oidc_name or urlsplit(settings.oidc_issuer).hostname or "OpenID Connect"
    return Client(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_groups_claim,
                  name)


def client_secret(conn: Connection, settings: Settings) -> str:
    """The client secret: ``PATCHPILOT_OIDC_CLIENT_SECRET``, else the stored secret named
    by ``PATCHPILOT_OIDC_CLIENT_SECRET_NAME``."""
    if settings.oidc_client_secret:
        return settings.oidc_client_secret
    if not settings.oidc_client_secret_name:
        raise OidcError("OpenID Connect has no client secret here "
                        "(PATCHPILOT_OIDC_CLIENT_SECRET or _SECRET_NAME)")
    try:
        return read_secret(conn, settings.oidc_client_secret_name, key_of(settings))
    except (NotFound, InvalidInput) as exc:
        raise OidcError(f"PATCHPILOT_OIDC_CLIENT_SECRET_NAME: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Provider:
    """What the provider's discovery document says (the parts used here)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


@dataclass(frozen=True, slots=True)
class Pending:
    """A sign-in under way: what the callback must find again."""

    state: str
    nonce: str
    verifier: str
    next: str

    def as_cookie(self) -> dict[str, str]:
        """The signed cookie's content."""
        return {"state": self.state, "nonce": self.nonce, "verifier": self.verifier,
                "next": self.next}

    @classmethod
    def from_cookie(cls, data: dict[str, Any]) -> Pending | None:
        """The pending sign-in of a cookie's content; None when it holds none."""
        values = [data.get(k) for k in ("state", "nonce", "verifier", "next")]
        if not all(isinstance(v, str) and v for v in values):
            return None
        return cls(*values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in."""

    external_id: str  # "<issuer> <sub>": a subject is unique only within its issuer
    name: str  # preferred_username, else email, else sub
    memberships: tuple[str, ...]  # the groups claim's values


# Discovery documents and key sets by URL: (fetched at, value).  A lock, because the
# server answers requests from a thread pool.
_cache: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def _get_json(http: httpx.Client, url: str, what: str) -> dict[str, Any]:
    try:
        answer = http.get(url, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise OidcError(f"the OpenID Connect provider cannot be reached ({what} {url}: "
                        f"{type(exc).__name__})") from exc
    if answer.status_code != 200:
        raise OidcError(f"the OpenID Connect provider answered {answer.status_code} for its "
                        f"{what} ({url})")
    try:
        data = answer.json()
    except ValueError as exc:
        raise OidcError(f"the OpenID Connect provider's {what} is not JSON ({url})") from exc
    if not isinstance(data, dict):
        raise OidcError(f"the OpenID Connect provider's {what} is not a JSON object ({url})")
    return data


def _cached(url: str, fetch: Any, *, fresh: bool = False) -> Any:
    now = time.monotonic()
    with _lock:
        hit = _cache.get(url)
    if hit is not None and not fresh and now - hit[0] < DISCOVERY_TTL:
        return hit[1]
    value = fetch()
    with _lock:
        _cache[url] = (now, value)
    return value


def discover(client: Client, http: httpx.Client) -> Provider:
    """The provider's endpoints from its discovery document (kept an hour).

    The document's ``issuer`` must be the configured one exactly (Discovery §4.3): a
    document served for another issuer is refused.
    """
    def fetch() -> Provider:
        doc = _get_json(http, client.discovery_url, "discovery document")
        if doc.get("issuer") != client.issuer:
            raise OidcError(f"the discovery document at {client.discovery_url} names issuer "
                            f"{doc.get('issuer')!r}, not {client.issuer!r}")
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                   if not isinstance(doc.get(k), str)]
        if missing:
            raise OidcError(f"the discovery document at {client.discovery_url} has no "
                            f"{missing[0]}")
        end = doc.get("end_session_endpoint")
        return Provider(client.issuer, doc["authorization_endpoint"], doc["token_endpoint"],
                        doc["jwks_uri"], end if isinstance(end, str) else None)
    return _cached(client.discovery_url, fetch)  # type: ignore[no-any-return]


def _key_set(provider: Provider, http: httpx.Client, *, fresh: bool = False) -> KeySet:
    def fetch() -> KeySet:
        try:
            return KeySet.import_key_set(_get_json(http, provider.jwks_uri, "key set (JWKS)"))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError(f"the provider's key set ({provider.jwks_uri}) cannot be "
                            f"read: {exc}") from exc
    return _cached(provider.jwks_uri, fetch, fresh=fresh)  # type: ignore[no-any-return]


def start(client: Client, provider: Provider, redirect_uri: str, next_url: str
          ) -> tuple[str, Pending]:
    """The provider's authorization URL to send the browser to, and what the callback
    must find again."""
    pending = Pending(generate_token(32), generate_token(32), generate_token(64), next_url)
    query = urlencode({
        "response_type": "code", "client_id": client.client_id,
        "redirect_uri": redirect_uri, "scope": SCOPES, "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": create_s256_code_challenge(pending.verifier),
        "code_challenge_method": "S256"})
    sep = "&" if "?" in provider.authorization_endpoint else "?"
    return f"{provider.authorization_endpoint}{sep}{query}", pending


def finish(client: Client, provider: Provider, http: httpx.Client, *, secret: str,
           pending: Pending | None, redirect_uri: str, params: dict[str, str]) -> Identity:
    """The identity of a callback's ``params`` (code, state or error), after every
    check; OidcError saying which one failed."""
    if pending is None:
        raise OidcError("no sign-in is under way in this browser (or it took longer than "
                        "ten minutes): start again from the login page")
    if not secrets.compare_digest(params.get("state", ""), pending.state):
        raise OidcError("the answer's state does not match the sign-in this browser started: "
                        "start again from the login page")
    if params.get("error"):
        raise OidcError(f"the provider refused the sign-in: {params['error']}"
                        + (f" ({params['error_description']})"
                           if params.get("error_description") else ""))
    code = params.get("code")
    if not code:
        raise OidcError("the provider's answer has no authorization code")
    id_token = _redeem(client, provider, http, secret, code, redirect_uri, pending.verifier)
    claims = validate_id_token(client, provider, http, id_token, pending.nonce)
    return identity_of(client, claims)


def _redeem(client: Client, provider: Provider, http: httpx.Client, secret: str, code: str,
            redirect_uri: str, verifier: str) -> str:
    """The ID token the token endpoint gives for ``code`` (client_secret_basic, RFC 6749
    §2.3.1, and the PKCE verifier)."""
    try:
        answer = http.post(provider.token_endpoint, timeout=TIMEOUT,
                           auth=(client.client_id, secret),
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": redirect_uri, "code_verifier": verifier})
    except httpx.HTTPError as exc:
        raise OidcError(f"the provider's token endpoint cannot be reached "
                        f"({type(exc).__name__})") from exc
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise OidcError(f"the provider's token endpoint refused the code "
                        f"({answer.status_code}{': ' + str(error) if error else ''})")
    token = body.get("id_token")
    if not isinstance(token, str) or not token:
        raise OidcError("the provider's token answer has no ID token (is the openid scope "
                        "allowed for this client?)")
    return token


def validate_id_token(client: Client, provider: Provider, http: httpx.Client, token: str,
                      nonce: str, now: int | None = None) -> dict[str, Any]:
    """The claims of ``token`` once its signature (the provider's JWKS), issuer, audience,
    expiry and nonce are checked (OpenID Connect Core §3.1.3.7)."""
    try:
        try:
            decoded = jwt.decode(token, _key_set(provider, http), algorithms=ALGORITHMS)
        except (ValueError, JoseError):
            # Perhaps a key the kept set lacks: the provider may have rotated its keys
            # within the hour.  Once more with a fresh set (a failing sign-in only).
            decoded = jwt.decode(token, _key_set(provider, http, fresh=True),
                                 algorithms=ALGORITHMS)
    except (ValueError, JoseError) as exc:
        raise OidcError(f"the ID token's signature is not valid ({_why(exc)})") from exc
    claims = CodeIDToken(
        decoded.claims, decoded.header,
        options={"iss": {"essential": True, "value": provider.issuer},
                 "aud": {"essential": True, "value": client.client_id},
                 "exp": {"essential": True}, "sub": {"essential": True},
                 "nonce": {"essential": True, "value": nonce}},
        params={"nonce": nonce, "client_id": client.client_id})
    try:
        claims.validate(now=now if now is not None else int(time.time()), leeway=LEEWAY)
    except JoseError as exc:
        raise OidcError(f"the ID token is not valid: {_why(exc)}") from exc
    return dict(claims)


def _why(exc: Exception) -> str:
    # joserfc's errors carry a short code and a description ("invalid_claim: Invalid
    # claim: 'aud'"); say both plainly.
    description = getattr(exc, "description", None) or str(exc)
    error = getattr(exc, "error", None)
    return f"{error}: {description}" if error and error not in description else description


def identity_of(client: Client, claims: dict[str, Any]) -> Identity:
    """The user of validated ID token claims: the issuer's subject, a readable name, the
    groups claim's values (a list or a single string)."""
    sub = str(claims["sub"])
    name = next((str(claims[k]) for k in ("preferred_username", "email")
                 if isinstance(claims.get(k), str) and claims[k].strip()), sub)
    raw = claims.get(client.groups_claim)
    if isinstance(raw, str):
        groups: tuple[str, ...] = (raw,)
    elif isinstance(raw, list):
        groups = tuple(str(g) for g in raw if isinstance(g, str | int) and str(g).strip())
    else:
        groups = ()
    return Identity(f"{claims['iss']} {sub}", name.strip(), groups)


def logout_url(provider: Provider, client: Client, after: str) -> str | None:
    """Where to send the browser to end the provider's session too (RP-Initiated Logout
    1.0), then back to ``after``; None when the provider advertises no
    ``end_session_endpoint``."""
    if not provider.end_session_endpoint:
        return None
    sep = "&" if "?" in provider.end_session_endpoint else "?"
    return provider.end_session_endpoint + sep + urlencode(
        {"client_id": client.client_id, "post_logout_redirect_uri": after})


def is_oidc_user(conn: Connection, user_id: int) -> bool:
    """Whether the user signed in through OpenID Connect (their source)."""
    return conn.execute(select(users.c.source).where(users.c.id == user_id)
                        ).scalar() == SOURCE
