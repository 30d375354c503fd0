"""Every setting of PatchPilot, read from the environment in this one module.

:class:`Settings` has one field per environment variable, with its default and a line
saying what it does; :func:`load_settings` reads them.  Nothing else in the package reads
the environment (a test greps for it): other modules call :func:`load_settings` or take
the value as a parameter.  The README's "Settings" table lists the same variables.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

from patchpilot.errors import ConfigError

# Far above a real host's inventory (a few MB) or a container image's syft SBOM (tens of
# MB), far below what would hurt a small server.
DEFAULT_MAX_IMPORT_MB = 512
DEFAULT_MAX_UPLOAD_MB = 64
# Advisories and KEV entries appear daily; a day-old knowledge base is what a nightly cron
# job gave before the server updated itself.
DEFAULT_FEED_UPDATE_HOURS = 24.0
# Long enough for a large re-match between heartbeats, short enough that a crashed
# worker's job is retried within minutes.
DEFAULT_LEASE_SECONDS = 120
# A lease shorter than this would expire between a worker's heartbeats.
MIN_LEASE_SECONDS = 2
# Assets per chunk of a divided job (a re-match, a re-prioritisation): some seconds of work
# each on this machine's two cores, so workers share an estate in pieces small enough to
# spread, large enough that a chunk's own set-based statements stay cheap per asset.
DEFAULT_CHUNK_ASSETS = 2000
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
DEFAULT_SMTP_PORT = 25
# The technical report's size guard: vulnerability blocks detailed in one PDF/HTML.
# WeasyPrint lays out some 50-90 blocks a second and holds about 0.35 MB per block until
# the PDF is written (measured on a 500-asset group: 1,000 blocks took 25 s and 546 MB
# peak), so 500 blocks (about 100 pages) stay well under 30 s and 500 MB even with long
# advisory summaries; the CSV/XLSX export has the rest.
DEFAULT_REPORT_MAX_FINDINGS = 500
# A report job's child process may grow to this (RSS): far above a whole-estate XLSX in
# write-only mode or a group's technical PDF, far below what would hurt a server.
DEFAULT_REPORT_MEMORY_MB = 1024
# A finished report file is kept for download this long.
DEFAULT_REPORT_KEEP_HOURS = 24.0
# Above this many open findings in scope, a technical XLSX is made by a job rather than
# while the request waits (a 10,000-finding XLSX takes a few seconds); a PDF or HTML above
# a twentieth of it (reports.generate.SYNC_WEIGHT).
DEFAULT_REPORT_SYNC_FINDINGS = 10_000
# An open finding's ``sla_due_soon`` event comes this many days before its due date: long
# enough to plan a change into the next weekly window, short enough not to cry wolf.
DEFAULT_SLA_WARNING_DAYS = 3
# EPSS scores whose crossing is an ``epss_crossed`` event: FIRST's own rough bands of
# "worth a look", "likely" and "almost certain" exploitation activity within 30 days.
DEFAULT_EPSS_THRESHOLDS = (0.1, 0.5, 0.9)
# Playbook actions send at most this often to one target a minute (a mail server or a
# chat webhook that throttles would otherwise see a burst of hundreds after an import).
DEFAULT_ACTION_RATE_LIMIT = 30
# Network discovery sends at most this many packets a second (nmap --max-rate): a /24 with
# nmap's 1,000 common ports still finishes overnight, and no IDS or small firewall sees a
# flood.  ``--rate`` raises it for one run.
DEFAULT_DISCOVERY_RATE = 200
# LDAP: the search filter of OpenLDAP's inetOrgPerson users (Active Directory:
# ``(sAMAccountName={username})``), and how long a sign-in waits for the directory: long
# enough for a domain controller across a WAN link, short enough that a login page whose
# directory is down answers while the user still looks at it.
DEFAULT_LDAP_USER_FILTER = "(uid={username})"
DEFAULT_LDAP_TIMEOUT = 5
# The claim most providers (Keycloak, Okta, Entra ID with group claims on) put groups in.
DEFAULT_OIDC_GROUPS_CLAIM = "groups"

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings of one process: one field per environment variable."""

    home: Path
    """``PATCHPILOT_HOME``: the data directory (default ``$XDG_DATA_HOME/patchpilot``, else
    ``~/.local/share/patchpilot``)."""
    database_url: str
    """``PATCHPILOT_DATABASE_URL``: SQLAlchemy URL (default SQLite
    ``$PATCHPILOT_HOME/patchpilot.db``)."""
    feeds_dirs: tuple[Path, ...]
    """``PATCHPILOT_FEEDS_DIR``: read feeds from these folders (``:``-separated) instead of
    downloading them; empty: the official sources."""
    max_upload: int = DEFAULT_MAX_UPLOAD_MB << 20
    """``PATCHPILOT_MAX_UPLOAD_MB`` (in MiB, stored in bytes): the largest upload the server
    reads; every body is bounded while it streams (server/limits.py)."""
    feed_update_hours: float | None = DEFAULT_FEED_UPDATE_HOURS
    """``PATCHPILOT_FEED_UPDATE_INTERVAL``: hours between the server's own knowledge-base
    updates; None (``0`` or ``off``): never, for air-gapped installs loaded by hand."""
    nvd_api_key: str | None = None
    """``NVD_API_KEY``: optional NVD API key (a higher rate limit)."""
    session_secret: str | None = None
    """``PATCHPILOT_SESSION_SECRET``: the dashboard's cookie signing key (the same on every
    server behind a load balancer); None: a random key kept in the home (mode 0600)."""
    secrets_key: str | None = None
    """``PATCHPILOT_SECRETS_KEY``: the key the playbooks' action secrets are encrypted
    with (default: a random key kept in the data directory, ``secrets.key``)."""
    worker_lease_seconds: int = DEFAULT_LEASE_SECONDS
    """``PATCHPILOT_WORKER_LEASE_SECONDS``: how long a worker holds a job between heartbeats
    before another may take it (at least 2)."""
    chunk_assets: int = DEFAULT_CHUNK_ASSETS
    """``PATCHPILOT_CHUNK_ASSETS``: assets per chunk job of a re-match or a
    re-prioritisation of the estate (a smaller estate is done in one job)."""
    ssh_identities: tuple[Path, ...] = ()
    """``PATCHPILOT_SSH_IDENTITY``: private key files (``:``-separated) the workers log in
    to SSH targets with; keys by path, never contents."""
    ssh_known_hosts: Path = DEFAULT_KNOWN_HOSTS
    """``PATCHPILOT_SSH_KNOWN_HOSTS``: the known_hosts file the workers check SSH targets'
    host keys against (an unknown key is refused)."""
    ssh_auth_sock: str | None = None
    """``SSH_AUTH_SOCK``: the ssh-agent's socket; None: no agent is asked for keys."""
    smtp_host: str = "localhost"
    """``PATCHPILOT_SMTP_HOST``: the SMTP server reports are mailed through."""
    smtp_port: int = DEFAULT_SMTP_PORT
    """``PATCHPILOT_SMTP_PORT``: its port."""
    smtp_starttls: bool = False
    """``PATCHPILOT_SMTP_STARTTLS``: ``true`` to upgrade the connection with STARTTLS."""
    smtp_user: str | None = None
    """``PATCHPILOT_SMTP_USER``: login name (login only when the password is set too)."""
    smtp_password: str | None = None
    """``PATCHPILOT_SMTP_PASSWORD``: login password (never logged or stored)."""
    smtp_from: str | None = None
    """``PATCHPILOT_SMTP_FROM``: the sender; None: ``patchpilot@<host name>``."""
    report_max_findings: int = DEFAULT_REPORT_MAX_FINDINGS
    """``PATCHPILOT_REPORT_MAX_FINDINGS``: the most vulnerability blocks (a vulnerability
    of one patch, its eight fields once for all its hosts) a technical PDF/HTML report
    details; past it the report says how many more there are and points to the CSV/XLSX
    export of the same scope."""
    report_memory_mb: int = DEFAULT_REPORT_MEMORY_MB
    """``PATCHPILOT_REPORT_MEMORY_MB``: the memory (resident, MiB) one report job may use;
    past it the job is stopped and fails saying so."""
    report_keep_hours: float = DEFAULT_REPORT_KEEP_HOURS
    """``PATCHPILOT_REPORT_KEEP_HOURS``: how long a report job's file is kept for
    download."""
    report_sync_findings: int = DEFAULT_REPORT_SYNC_FINDINGS
    """``PATCHPILOT_REPORT_SYNC_FINDINGS``: above this many open findings in scope, a
    technical XLSX download becomes a report job, a PDF or HTML above a twentieth of it
    (CSV always streams)."""
    max_import: int = DEFAULT_MAX_IMPORT_MB << 20
    """``PATCHPILOT_MAX_IMPORT_MB`` (in MiB, stored in bytes): the largest scanner report
    the server takes as an upload (``POST /api/imports``, the import page); larger is
    answered 413.  ``patchpilot import`` on the command line has no limit."""
    import_watch_dir: Path | None = None
    """``PATCHPILOT_IMPORT_WATCH_DIR``: a folder idle workers import scanner reports from
    (each file moved to ``done/`` or ``failed/`` beside it); unset: none."""
    webhook_allow_networks: tuple[str, ...] = ()
    """``PATCHPILOT_WEBHOOK_ALLOW_NETWORKS``: address ranges (CIDR, ``,``-separated) that
    playbook webhooks may reach although they are loopback, private or link-local; empty:
    such targets are refused (SSRF)."""
    sla_warning_days: int = DEFAULT_SLA_WARNING_DAYS
    """``PATCHPILOT_SLA_WARNING_DAYS``: an open finding's ``sla_due_soon`` event is written
    when its due date is this many days away or less (0: never)."""
    epss_thresholds: tuple[float, ...] = DEFAULT_EPSS_THRESHOLDS
    """``PATCHPILOT_EPSS_THRESHOLDS``: EPSS scores (``,``-separated, above 0, at most 1)
    whose crossing by a feed update is an ``epss_crossed`` event of an open finding;
    ``off``: none."""
    action_rate_limit: int = DEFAULT_ACTION_RATE_LIMIT
    """``PATCHPILOT_ACTION_RATE_LIMIT``: how many times a minute playbook actions may send
    to one target (a mail recipient list, a webhook host); past it a delivery waits for
    the next minute, without counting as a failed attempt."""
    discovery_scope: tuple[str, ...] = ()
    """``PATCHPILOT_DISCOVERY_SCOPE``: the address ranges (CIDR, ``,``-separated) network
    discovery (nmap, SNMP) may probe; a target outside them is refused.  Empty: every
    target is refused (nothing is scanned until someone says what may be)."""
    discovery_rate: int = DEFAULT_DISCOVERY_RATE
    """``PATCHPILOT_DISCOVERY_RATE``: packets a second network discovery sends at most
    (nmap ``--max-rate``), unless ``--rate`` says otherwise for one run."""
    snmp_community: str | None = None
    """``PATCHPILOT_SNMP_COMMUNITY``: the SNMP v2c community devices are read with when
    the command names none (never logged or stored)."""
    directory_map: Path | None = None
    """``PATCHPILOT_DIRECTORY_MAP``: the YAML file mapping directory groups (LDAP groups,
    OIDC group or role claims) to PatchPilot roles and scopes; without it no directory
    user can sign in."""
    ldap_url: str | None = None
    """``PATCHPILOT_LDAP_URL``: the directory users sign in against, ``ldaps://host:636``
    or ``ldap://host:389`` (then with ``PATCHPILOT_LDAP_STARTTLS``); None: no LDAP."""
    ldap_starttls: bool = False
    """``PATCHPILOT_LDAP_STARTTLS``: ``true`` to upgrade an ``ldap://`` connection with
    StartTLS (required: passwords never cross the network in clear)."""
    ldap_ca_file: Path | None = None
    """``PATCHPILOT_LDAP_CA_FILE``: the CA certificates (PEM) the directory's certificate is
    checked against; None: the system's trusted CAs.  The check is never off."""
    ldap_bind_dn: str | None = None
    """``PATCHPILOT_LDAP_BIND_DN``: the service account users are searched with; None: an
    anonymous search."""
    ldap_bind_password_secret: str | None = None
    """``PATCHPILOT_LDAP_BIND_PASSWORD_SECRET``: the name of the stored secret (``patchpilot
    secret set``) holding the service account's password."""
    ldap_bind_password_env: str | None = None
    """``PATCHPILOT_LDAP_BIND_PASSWORD_ENV``: else the name of the environment variable
    holding it (never logged or stored)."""
    ldap_user_base: str | None = None
    """``PATCHPILOT_LDAP_USER_BASE``: the DN users are searched under."""
    ldap_user_filter: str = DEFAULT_LDAP_USER_FILTER
    """``PATCHPILOT_LDAP_USER_FILTER``: the filter that finds a user, ``{username}`` standing
    for the name typed (escaped per RFC 4515)."""
    ldap_group_base: str | None = None
    """``PATCHPILOT_LDAP_GROUP_BASE``: the DN groups are searched under."""
    ldap_active_directory: bool = False
    """``PATCHPILOT_LDAP_ACTIVE_DIRECTORY``: ``true`` for Active Directory: nested groups
    are read in one search with LDAP_MATCHING_RULE_IN_CHAIN."""
    ldap_timeout: int = DEFAULT_LDAP_TIMEOUT
    """``PATCHPILOT_LDAP_TIMEOUT``: seconds a sign-in waits for the directory to connect
    and to answer each request."""
    oidc_issuer: str | None = None
    """``PATCHPILOT_OIDC_ISSUER``: the OpenID Connect provider's issuer URL (its
    ``/.well-known/openid-configuration`` is read); None: no OIDC sign-in."""
    oidc_client_id: str | None = None
    """``PATCHPILOT_OIDC_CLIENT_ID``: PatchPilot's client id at that provider."""
    oidc_client_secret: str | None = None
    """``PATCHPILOT_OIDC_CLIENT_SECRET``: its client secret (never logged or stored)."""
    oidc_client_secret_name: str | None = None
    """``PATCHPILOT_OIDC_CLIENT_SECRET_NAME``: instead, the name of a stored secret
    (``patchpilot secret set``) holding it."""
    oidc_groups_claim: str = DEFAULT_OIDC_GROUPS_CLAIM
    """``PATCHPILOT_OIDC_GROUPS_CLAIM``: the ID token claim whose values are matched
    against the directory map (Entra ID app roles: ``roles``)."""
    oidc_name: str | None = None
    """``PATCHPILOT_OIDC_NAME``: the provider's name on the login page's button; None:
    the issuer's host name."""
    trusted_proxies: tuple[str, ...] = ()
    """``PATCHPILOT_TRUSTED_PROXIES``: the reverse proxies (addresses or CIDR ranges,
    ``,``-separated) whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` the server
    believes: a request from one of them is the client's it names (the address the audit
    log and login throttling see, https for Secure cookies and HSTS).  Empty: none, every
    request is its direct peer's."""
    agent_ca_file: Path | None = None
    """``PATCHPILOT_AGENT_CA_FILE``: the CA certificates (PEM) an agent checks the server's
    TLS certificate against (``patchpilot agent --ca-file`` for one run); None: the
    system's trusted CAs.  The check is never off."""

    @property
    def reports_dir(self) -> Path:
        """Where report jobs write their files (one folder per job)."""
        return self.home / "reports"

    @property
    def cache_dir(self) -> Path:
        """Where downloaded feed files are kept between updates."""
        return self.home / "feeds"

    @property
    def smtp_sender(self) -> str:
        """The mail sender: ``PATCHPILOT_SMTP_FROM`` or ``patchpilot@<host name>``."""
        return self.smtp_from or f"patchpilot@{socket.getfqdn() or 'localhost'}"

    def __repr__(self) -> str:
        # The secrets never reach a log line or a traceback through repr.
        hidden = {"nvd_api_key", "session_secret", "smtp_password", "secrets_key",
                  "snmp_community", "oidc_client_secret"}
        shown = ", ".join(
            f"{name}=" + ("'***'" if name in hidden and getattr(self, name)
                          else repr(getattr(self, name)))
            for name in self.__dataclass_fields__)
        return f"Settings({shown})"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """``$PATCHPILOT_HOME`` or the XDG data directory."""
    env = os.environ if env is None else env
    home = env.get("PATCHPILOT_HOME")
    if home:
        return Path(home).expanduser()
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "patchpilot"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: the process environment).

    A value that cannot be used is a ConfigError naming the variable.
    """
    env = os.environ if env is None else env
    home = default_home(env)
    url = env.get("PATCHPILOT_DATABASE_URL") or f"sqlite:///{home / 'patchpilot.db'}"
    known_hosts = env.get("PATCHPILOT_SSH_KNOWN_HOSTS")
    return Settings(
        home=home, database_url=url,
        feeds_dirs=_paths(env.get("PATCHPILOT_FEEDS_DIR", "")),
        max_upload=_max_upload_mb(env) << 20,
        feed_update_hours=_feed_update_hours(env),
        nvd_api_key=env.get("NVD_API_KEY") or None,
        session_secret=env.get("PATCHPILOT_SESSION_SECRET") or None,
        secrets_key=env.get("PATCHPILOT_SECRETS_KEY") or None,
        worker_lease_seconds=_lease_seconds(env),
        chunk_assets=_whole(env, "PATCHPILOT_CHUNK_ASSETS", DEFAULT_CHUNK_ASSETS, least=1,
                            unit="assets"),
        ssh_identities=_paths(env.get("PATCHPILOT_SSH_IDENTITY", "")),
        ssh_known_hosts=Path(known_hosts) if known_hosts else DEFAULT_KNOWN_HOSTS,
        ssh_auth_sock=env.get("SSH_AUTH_SOCK") or None,
        smtp_host=env.get("PATCHPILOT_SMTP_HOST") or "localhost",
        smtp_port=_smtp_port(env),
        smtp_starttls=env.get("PATCHPILOT_SMTP_STARTTLS", "").strip().lower() in _TRUE,
        smtp_user=env.get("PATCHPILOT_SMTP_USER") or None,
        smtp_password=env.get("PATCHPILOT_SMTP_PASSWORD") or None,
        smtp_from=env.get("PATCHPILOT_SMTP_FROM") or None,
        report_max_findings=_report_max_findings(env),
        report_memory_mb=_whole(env, "PATCHPILOT_REPORT_MEMORY_MB", DEFAULT_REPORT_MEMORY_MB,
                                least=64, unit="MiB"),
        report_keep_hours=_report_keep_hours(env),
        report_sync_findings=_whole(env, "PATCHPILOT_REPORT_SYNC_FINDINGS",
                                    DEFAULT_REPORT_SYNC_FINDINGS, least=0,
                                    unit="open findings"),
        max_import=_whole(env, "PATCHPILOT_MAX_IMPORT_MB", DEFAULT_MAX_IMPORT_MB, least=1,
                          unit="MiB") << 20,
        import_watch_dir=(Path(env["PATCHPILOT_IMPORT_WATCH_DIR"]).expanduser()
                          if env.get("PATCHPILOT_IMPORT_WATCH_DIR", "").strip() else None),
        webhook_allow_networks=_networks(env, "PATCHPILOT_WEBHOOK_ALLOW_NETWORKS"),
        sla_warning_days=_whole(env, "PATCHPILOT_SLA_WARNING_DAYS", DEFAULT_SLA_WARNING_DAYS,
                                least=0, unit="days"),
        epss_thresholds=_epss_thresholds(env),
        action_rate_limit=_whole(env, "PATCHPILOT_ACTION_RATE_LIMIT",
                                 DEFAULT_ACTION_RATE_LIMIT, least=1, unit="sends a minute"),
        discovery_scope=_networks(env, "PATCHPILOT_DISCOVERY_SCOPE"),
        discovery_rate=_whole(env, "PATCHPILOT_DISCOVERY_RATE", DEFAULT_DISCOVERY_RATE,
                              least=1, unit="packets a second"),
        snmp_community=env.get("PATCHPILOT_SNMP_COMMUNITY") or None,
        directory_map=(Path(env["PATCHPILOT_DIRECTORY_MAP"]).expanduser()
                       if env.get("PATCHPILOT_DIRECTORY_MAP", "").strip() else None),
**_ldap(env),
        **_oidc(env),
        trusted_proxies=_networks(env, "PATCHPILOT_TRUSTED_PROXIES"),
        agent_ca_file=(Path(env["PATCHPILOT_AGENT_CA_FILE"].strip()).expanduser()
                       if env.get("PATCHPILOT_AGENT_CA_FILE", "").strip() else None),
    )


def _oidc(env: Mapping[str, str]) -> dict[str, Any]:
    """The OpenID Connect fields: an issuer needs a client id and one way to its secret,
    and is https (plain http only on a loopback address, for a test provider)."""
    issuer = env.get("PATCHPILOT_OIDC_ISSUER", "").strip() or None
    found: dict[str, Any] = {
        "oidc_issuer": issuer,
        "oidc_client_id": env.get("PATCHPILOT_OIDC_CLIENT_ID", "").strip() or None,
        "oidc_client_secret": env.get("PATCHPILOT_OIDC_CLIENT_SECRET") or None,
        "oidc_client_secret_name":
            env.get("PATCHPILOT_OIDC_CLIENT_SECRET_NAME", "").strip() or None,
        "oidc_groups_claim": (env.get("PATCHPILOT_OIDC_GROUPS_CLAIM", "").strip()
                              or DEFAULT_OIDC_GROUPS_CLAIM),
        "oidc_name": env.get("PATCHPILOT_OIDC_NAME", "").strip() or None,
    }
    if issuer is None:
        return found
    parsed = urlsplit(issuer)
    loopback = parsed.hostname in ("localhost", "127.0.0.1", "::1")
    if not parsed.hostname or not (parsed.scheme == "https"
                                   or (parsed.scheme == "http" and loopback)):
        raise ConfigError(f"PATCHPILOT_OIDC_ISSUER: {issuer!r} is not an https URL (plain "
                          "http only on a loopback address)")
    if not found["oidc_client_id"]:
        raise ConfigError("PATCHPILOT_OIDC_CLIENT_ID: required with PATCHPILOT_OIDC_ISSUER")
    if not (found["oidc_client_secret"] or found["oidc_client_secret_name"]):
        raise ConfigError("PATCHPILOT_OIDC_CLIENT_SECRET or PATCHPILOT_OIDC_CLIENT_SECRET_NAME:"
                          " one is required with PATCHPILOT_OIDC_ISSUER")
    return found


class _LdapFields(TypedDict):
    ldap_url: str | None
    ldap_starttls: bool
    ldap_ca_file: Path | None
    ldap_bind_dn: str | None
    ldap_bind_password_secret: str | None
    ldap_bind_password_env: str | None
    ldap_user_base: str | None
    ldap_user_filter: str
    ldap_group_base: str | None
    ldap_active_directory: bool
    ldap_timeout: int


def _ldap(env: Mapping[str, str]) -> _LdapFields:
    """The LDAP settings, checked together: a URL needs a user and a group base, and an
    ``ldap://`` URL needs StartTLS (a password is never sent in clear)."""
    url = env.get("PATCHPILOT_LDAP_URL", "").strip() or None
    starttls = env.get("PATCHPILOT_LDAP_STARTTLS", "").strip().lower() in _TRUE
    user_filter = (env.get("PATCHPILOT_LDAP_USER_FILTER", "").strip()
                   or DEFAULT_LDAP_USER_FILTER)
    if "{username}" not in user_filter or not (
            user_filter.startswith("(") and user_filter.endswith(")")):
        raise ConfigError(f"PATCHPILOT_LDAP_USER_FILTER: {user_filter!r} is not an LDAP filter "
                          "with {username} in it, e.g. (uid={username}) or "
                          "(sAMAccountName={username})")
    ca_file = env.get("PATCHPILOT_LDAP_CA_FILE", "").strip()
    found: _LdapFields = {
        "ldap_url": url, "ldap_starttls": starttls,
        "ldap_ca_file": Path(ca_file).expanduser() if ca_file else None,
        "ldap_bind_dn": env.get("PATCHPILOT_LDAP_BIND_DN", "").strip() or None,
        "ldap_bind_password_secret":
            env.get("PATCHPILOT_LDAP_BIND_PASSWORD_SECRET", "").strip() or None,
        "ldap_bind_password_env": env.get("PATCHPILOT_LDAP_BIND_PASSWORD_ENV", "").strip() or None,
        "ldap_user_base": env.get("PATCHPILOT_LDAP_USER_BASE", "").strip() or None,
        "ldap_user_filter": user_filter,
        "ldap_group_base": env.get("PATCHPILOT_LDAP_GROUP_BASE", "").strip() or None,
        "ldap_active_directory":
            env.get("PATCHPILOT_LDAP_ACTIVE_DIRECTORY", "").strip().lower() in _TRUE,
        "ldap_timeout": _whole(env, "PATCHPILOT_LDAP_TIMEOUT", DEFAULT_LDAP_TIMEOUT, least=1,
                               unit="seconds"),
    }
    if url is None:
        return found
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("ldap", "ldaps") or not rest.strip("/"):
        raise ConfigError(f"PATCHPILOT_LDAP_URL: {url!r} is not ldaps://HOST[:PORT] or "
                          "ldap://HOST[:PORT]")
    if scheme.lower() == "ldap" and not starttls:
        raise ConfigError(f"PATCHPILOT_LDAP_URL: {url!r} would send passwords in clear: use "
                          "ldaps:// or set PATCHPILOT_LDAP_STARTTLS=true")
    if scheme.lower() == "ldaps" and starttls:
        raise ConfigError("PATCHPILOT_LDAP_STARTTLS: an ldaps:// connection is encrypted "
                          "already; StartTLS is for ldap:// URLs")
    for name in ("PATCHPILOT_LDAP_USER_BASE", "PATCHPILOT_LDAP_GROUP_BASE"):
        if not env.get(name, "").strip():
            raise ConfigError(f"{name}: needed with PATCHPILOT_LDAP_URL (the DN to search "
                              "under, e.g. ou=people,dc=example,dc=org)")
    return found


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    found = []
    for part in env.get(name, "").split(","):
        if part.strip():
            try:
                found.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError as exc:
                raise ConfigError(f"{name}: {part.strip()!r} is not an address range "
                                  f"(CIDR, e.g. 127.0.0.0/8)") from exc
    return tuple(found)


def _epss_thresholds(env: Mapping[str, str]) -> tuple[float, ...]:
    raw = env.get("PATCHPILOT_EPSS_THRESHOLDS", "").strip().lower()
    if not raw:
        return DEFAULT_EPSS_THRESHOLDS
    if raw == "off":
        return ()
    found = set()
    for part in raw.split(","):
        try:
            value = float(part)
        except ValueError:
            value = -1.0
        # nan fails both comparisons.
        if not 0 < value <= 1:
            raise ConfigError(f"PATCHPILOT_EPSS_THRESHOLDS: {part.strip()!r} is not an EPSS "
                              "score above 0 and at most 1 (e.g. 0.1,0.5,0.9; off: none)")
        found.add(value)
    return tuple(sorted(found))


def named_variable(name: str) -> str | None:
    """The value of the environment variable a user named on the command line
    (``--password-env``, ``--token-env``), None when unset or empty.

    Secrets are passed by the name of a variable so they never appear in a process list or
    a shell history; the name is the user's, so it has no field in :class:`Settings`.
    """
    return os.environ.get(name) or None


def _paths(raw: str) -> tuple[Path, ...]:
    return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())


def _max_upload_mb(env: Mapping[str, str]) -> int:
    raw = env.get("PATCHPILOT_MAX_UPLOAD_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_MB
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"PATCHPILOT_MAX_UPLOAD_MB: {raw!r} is not a whole number of "
                            "MiB (1 or more)")
    return int(raw)


def _feed_update_hours(env: Mapping[str, str]) -> float | None:
    raw = env.get("PATCHPILOT_FEED_UPDATE_INTERVAL", "").strip().lower()
    if not raw:
        return DEFAULT_FEED_UPDATE_HOURS
    if raw == "off":
        return None
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    # nan and inf are floats too, but no interval.
    if not 0 <= hours < 24 * 366:
        raise ConfigError(f"PATCHPILOT_FEED_UPDATE_INTERVAL: {raw!r} is not a number of hours "
                          "(0 or off: never; default 24)")
    return hours or None


def _lease_seconds(env: Mapping[str, str]) -> int:
    raw = env.get("PATCHPILOT_WORKER_LEASE_SECONDS", "").strip()
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        return max(MIN_LEASE_SECONDS, int(raw))
    except ValueError as exc:
        raise ConfigError(f"PATCHPILOT_WORKER_LEASE_SECONDS: {raw!r} is not a whole number "
                          "of seconds") from exc


def _report_max_findings(env: Mapping[str, str]) -> int:
    raw = env.get("PATCHPILOT_REPORT_MAX_FINDINGS", "").strip()
    if not raw:
        return DEFAULT_REPORT_MAX_FINDINGS
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"PATCHPILOT_REPORT_MAX_FINDINGS: {raw!r} is not a whole number "
                          "of vulnerability blocks (1 or more)")
    return int(raw)


def _smtp_port(env: Mapping[str, str]) -> int:
    raw = env.get("PATCHPILOT_SMTP_PORT", "").strip()
    if not raw:
        return DEFAULT_SMTP_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"PATCHPILOT_SMTP_PORT: {raw!r} is not a port number")
    return int(raw)


def _whole(env: Mapping[str, str], name: str, default: int, *, least: int, unit: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < least:
        raise ConfigError(f"{name}: {raw!r} is not a whole number of {unit} ({least} or more)")
    return int(raw)


def _report_keep_hours(env: Mapping[str, str]) -> float:
    raw = env.get("PATCHPILOT_REPORT_KEEP_HOURS", "").strip()
    if not raw:
        return DEFAULT_REPORT_KEEP_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not 0 < hours < 24 * 366:
        raise ConfigError(f"PATCHPILOT_REPORT_KEEP_HOURS: {raw!r} is not a number of hours "
                          "(more than 0; default 24)")
    return hours
