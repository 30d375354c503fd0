"""Sign-in against the company's LDAP directory or Active Directory (``ldap3``).

The flow (RFC 4513's "search then bind"): PatchPilot binds with its service account
(``PATCHPILOT_LDAP_BIND_DN``, or anonymously), finds the one user the filter names
(``PATCHPILOT_LDAP_USER_FILTER``, the typed name escaped per RFC 4515 so ``*`` or ``)``
in it match nothing else), binds as that user's DN with the password given, then reads
the groups the user belongs to under ``PATCHPILOT_LDAP_GROUP_BASE``:

* OpenLDAP and other directories: groups whose ``member`` or ``uniqueMember`` is the
  user's DN, then groups of those groups, level by level up to :data:`NESTING_DEPTH`
  (a cycle of groups ends because a group is visited once);
* Active Directory (``PATCHPILOT_LDAP_ACTIVE_DIRECTORY``): one search with
  LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941), which the domain controller
  follows transitively itself
  (https://learn.microsoft.com/windows/win32/adsi/search-filter-syntax).

The groups (each by DN and by CN) go to ``server.directory.sign_in_directory_user``,
whose directory map turns them into a role and scopes.

Every connection is encrypted and its certificate checked -- ``ldaps://`` or StartTLS,
against ``PATCHPILOT_LDAP_CA_FILE`` or the system's CAs, host name included; config.py
refuses a plain ``ldap://`` URL without StartTLS.  A directory that does not answer is a
:class:`DirectoryUnavailable` naming it: the sign-in fails, and never falls back to a
local password.  Passwords are only ever handed to ldap3's bind; none is logged, and
ldap3's own log hides them (``set_library_log_hide_sensitive_data``, on by default).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars
from sqlalchemy import Engine

from patchpilot.automation.secrets import SecretError, UnknownSecret, key_of, read_secret
from patchpilot.config import Settings, named_variable
from patchpilot.errors import ConfigError
from patchpilot.server.directory import DirectoryMap, sign_in_directory_user
from patchpilot.server.security import AuthError, Principal

# Levels of groups-in-groups followed on a directory without IN_CHAIN: real estates nest
# two or three deep; the limit bounds the searches a sign-in makes if a map is odd.
NESTING_DEPTH = 8
# Group DNs put into one OR filter: well under the filter sizes directories accept.
_FILTER_CHUNK = 50
# Groups read per page (simple paged results, RFC 2696): AD answers at most 1,000 a page.
_PAGE = 500
# LDAP_MATCHING_RULE_IN_CHAIN: Active Directory walks nested membership server-side.
IN_CHAIN = "1.2.840.113556.1.4.1941"
_WRONG = "wrong user name or password"


class DirectoryUnavailable(AuthError):
    """The directory could not be asked: it did not answer, its certificate is not
    trusted, or it refused PatchPilot's service account.  The sign-in fails with this
    message (never a local fallback) and does not count against the user's name."""


class DirectoryRefused(AuthError):
    """The directory accepted the password, but PatchPilot refuses the user (no rule of
    the directory map grants anything, a scoped grant, a disabled account, a name held by
    a local user): the message says which."""


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user the directory vouched for: their DN, name and groups (DNs and CNs)."""

    dn: str
    name: str
    memberships: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LdapConfig:
    """What one sign-in needs to reach the directory (from :class:`Settings`)."""

    url: str
    starttls: bool
    ca_file: Path | None
    bind_dn: str | None
    bind_password: str | None
    user_base: str
    user_filter: str
    group_base: str
    active_directory: bool
    timeout: int

    def __repr__(self) -> str:
        # The service password never reaches a log line or a traceback through repr.
        return (f"LdapConfig(url={self.url!r}, starttls={self.starttls}, "
                f"bind_dn={self.bind_dn!r}, user_base={self.user_base!r})")


def configured(settings: Settings) -> bool:
    """Whether LDAP sign-in is set up (``PATCHPILOT_LDAP_URL``)."""
    return settings.ldap_url is not None


def bind_password(settings: Settings, engine: Engine) -> str | None:
    """The service account's password: the stored secret
    ``PATCHPILOT_LDAP_BIND_PASSWORD_SECRET``, else the environment variable named by
    ``PATCHPILOT_LDAP_BIND_PASSWORD_ENV``; None when neither is set."""
    if settings.ldap_bind_password_secret:
        try:
            with engine.connect() as conn:
                return read_secret(conn, settings.ldap_bind_password_secret, key_of(settings))
        except (UnknownSecret, SecretError) as exc:
            raise ConfigError(f"PATCHPILOT_LDAP_BIND_PASSWORD_SECRET: {exc}") from exc
    if settings.ldap_bind_password_env:
        found = named_variable(settings.ldap_bind_password_env)
        if found is None:
            raise ConfigError(f"PATCHPILOT_LDAP_BIND_PASSWORD_ENV: the variable "
                              f"{settings.ldap_bind_password_env} is not set")
        return found
    return None


def config_of(settings: Settings, password: str | None) -> LdapConfig:
    """The sign-in configuration of ``settings`` with the service password resolved."""
    if settings.ldap_url is None or not settings.ldap_user_base or not settings.ldap_group_base:
        raise ConfigError("PATCHPILOT_LDAP_URL, _USER_BASE and _GROUP_BASE are needed for "
                          "LDAP sign-in")
    if settings.ldap_ca_file is not None and not settings.ldap_ca_file.is_file():
        raise ConfigError(f"PATCHPILOT_LDAP_CA_FILE: {settings.ldap_ca_file} is not a file "
                          "(the directory's CA certificates, PEM)")
    if settings.ldap_bind_dn and password is None:
        raise ConfigError("PATCHPILOT_LDAP_BIND_DN is set without a password: set "
                          "PATCHPILOT_LDAP_BIND_PASSWORD_SECRET or _ENV")
    return LdapConfig(settings.ldap_url, settings.ldap_starttls, settings.ldap_ca_file,
                      settings.ldap_bind_dn, password, settings.ldap_user_base,
                      settings.ldap_user_filter, settings.ldap_group_base,
                      settings.ldap_active_directory, settings.ldap_timeout)


# --- filters (pure) --------------------------------------------------------------------


def user_filter(template: str, username: str) -> str:
    """``template`` with ``{username}`` replaced by the name escaped per RFC 4515, so a
    name such as ``*`` or ``a)(uid=*`` matches only itself."""
    return template.replace("{username}", escape_filter_chars(username))


def member_filter(dns: Sequence[str]) -> str:
    """Groups with any of ``dns`` as a ``member`` (groupOfNames) or ``uniqueMember``
    (groupOfUniqueNames)."""
    terms = "".join(f"(member={v})(uniqueMember={v})"
                    for v in (escape_filter_chars(dn) for dn in dns))
    return f"(|{terms})"


def in_chain_filter(dn: str) -> str:
    """Active Directory: every group ``dn`` belongs to, directly or through other
    groups."""
    return f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})"


# --- talking to the directory ----------------------------------------------------------


def _server(config: LdapConfig) -> Server:
    # CERT_REQUIRED: the chain is checked against the CA file (or the system's CAs), and
    # ldap3 checks the host name after the handshake; there is no setting to turn it off.
    tls = Tls(validate=ssl.CERT_REQUIRED,
              ca_certs_file=str(config.ca_file) if config.ca_file else None)
    return Server(config.url, use_ssl=config.url.lower().startswith("ldaps://"), tls=tls,
                  connect_timeout=config.timeout, get_info=NONE)


def _unavailable(config: LdapConfig, exc: Exception) -> DirectoryUnavailable:
    text = str(exc)
    if isinstance(exc, LDAPCertificateError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return DirectoryUnavailable(
            f"The directory at {config.url} presented a certificate that is not trusted "
            "(PATCHPILOT_LDAP_CA_FILE) or not for its host name; sign-in is refused")
    if isinstance(exc, LDAPStartTLSError):
        return DirectoryUnavailable(f"The directory at {config.url} refused StartTLS")
    return DirectoryUnavailable(f"The directory at {config.url} did not answer; try again "
                                "later or ask IT whether it is down")


def _open(config: LdapConfig, server: Server, dn: str | None, password: str | None
          ) -> tuple[Connection, bool]:
    """A connection, encrypted, after a simple bind as ``dn`` (anonymous when None);
    (connection, whether the bind succeeded).  DirectoryUnavailable when the directory
    cannot be reached or its certificate is refused."""
    conn = Connection(server, user=dn, password=password, receive_timeout=config.timeout,
                      read_only=True, raise_exceptions=False)
    try:
        conn.open()
        if config.starttls and not conn.start_tls():
            conn.unbind()
            raise DirectoryUnavailable(f"The directory at {config.url} refused StartTLS")
        return conn, bool(conn.bind())
    except (LDAPCommunicationError, LDAPCertificateError, LDAPStartTLSError) as exc:
        raise _unavailable(config, exc) from None
    except LDAPException as exc:
        raise _unavailable(config, exc) from None


def _groups(config: LdapConfig, conn: Connection, user_dn: str) -> dict[str, str]:
    """The user's groups, direct and nested: DN -> CN."""
    found: dict[str, str] = {}  # by DN as the directory spells it
    seen: set[str] = set()  # DNs compared without regard to case, as LDAP does

    def search(query: str) -> list[tuple[str, str]]:
        entries = conn.extend.standard.paged_search(
            config.group_base, query, search_scope=SUBTREE, attributes=["cn"],
            paged_size=_PAGE, generator=False)
        if conn.result.get("result") not in (0, None):
            raise DirectoryUnavailable(f"The directory at {config.url} refused the group "
                                       f"search under {config.group_base}: "
                                       f"{conn.result.get('description')}")
        out = []
        for entry in entries:
            if entry.get("type") != "searchResEntry":
                continue  # a referral to another directory: not followed
            cn = entry["attributes"].get("cn") or []
            out.append((str(entry["dn"]), str(cn[0] if isinstance(cn, list) and cn else cn)))
        return out

    if config.active_directory:
        return dict(search(in_chain_filter(user_dn)))
    frontier = [user_dn]
    seen.add(user_dn.casefold())
    for _ in range(NESTING_DEPTH):
        level: list[str] = []
        for start in range(0, len(frontier), _FILTER_CHUNK):
            for dn, cn in search(member_filter(frontier[start:start + _FILTER_CHUNK])):
                if dn.casefold() not in seen:
                    seen.add(dn.casefold())
                    found[dn] = cn
                    level.append(dn)
        if not level:
            break
        frontier = level
    return found


def _name_attribute(config: LdapConfig) -> str:
    return "sAMAccountName" if config.active_directory else "uid"


def authenticate(config: LdapConfig, username: str, password: str) -> DirectoryUser:
    """The directory user ``username`` if ``password`` is theirs, with their groups.

    AuthError ("wrong user name or password") for an unknown name, a name matching
    several entries, or a wrong or empty password (an empty one would be an
    unauthenticated bind, which RFC 4513 section 5.1.2 lets a server accept);
    DirectoryUnavailable when the directory cannot be asked.
    """
    if not username or not password:
        raise AuthError(_WRONG)
    server = _server(config)
    service, bound = _open(config, server, config.bind_dn, config.bind_password)
    try:
        if not bound:
            raise DirectoryUnavailable(
                f"The directory at {config.url} refused PatchPilot's service account "
                f"({config.bind_dn or 'anonymous'}): check PATCHPILOT_LDAP_BIND_DN and its "
                "password")
        attribute = _name_attribute(config)
        service.search(config.user_base, user_filter(config.user_filter, username),
                       search_scope=SUBTREE, attributes=[attribute], size_limit=2)
        entries = [e for e in service.response or [] if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            raise AuthError(_WRONG)
        dn = str(entries[0]["dn"])
        value = entries[0]["attributes"].get(attribute)
        name = str((value[0] if isinstance(value, list) and value else value) or username)
        user, ok = _open(config, server, dn, password)
        user.unbind()
        if not ok:
            raise AuthError(_WRONG)
        groups = _groups(config, service, dn)
    except (LDAPCommunicationError, LDAPCertificateError) as exc:
        raise _unavailable(config, exc) from None
    finally:
        service.unbind()
    return DirectoryUser(dn, name, _memberships(groups.items()))


def _memberships(groups: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    # The directory map may name a group by CN or by DN: both are given.
    return tuple(sorted({part for dn, cn in groups for part in (dn, cn) if part}))


def sign_in(engine: Engine, settings: Settings, username: str, password: str) -> Principal:
    """Sign ``username`` in against the directory and bring their PatchPilot user up to
    date (``source`` ``ldap``, the DN as ``external_id``, role and scopes from the
    directory map).  No database connection is held while the directory is asked."""
    config = config_of(settings, bind_password(settings, engine))
    found = authenticate(config, username, password)
    directory_map = (DirectoryMap.load(settings.directory_map)
                     if settings.directory_map is not None else None)
    try:
        with engine.begin() as conn:
            return sign_in_directory_user(conn, source="ldap", external_id=found.dn,
                                          name=found.name, memberships=found.memberships,
                                          directory_map=directory_map)
    except AuthError as exc:
        raise DirectoryRefused(str(exc)) from exc
