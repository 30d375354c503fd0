"""Every setting is read in config.py and listed in the README (issue 11 item 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import patchpilot
from patchpilot.config import DEFAULT_KNOWN_HOSTS, Settings, load_settings
from patchpilot.errors import ConfigError

SRC = Path(patchpilot.__file__).parent
README = SRC.parents[1] / "README.md"
CONFIG = SRC / "config.py"
# Any way of reading the environment: os.environ[...], .get, os.getenv, `from os import
# environ`, os.environb.
READS = re.compile(r"\benviron\b|\benvironb\b|\bgetenv\b|\bgetenvb\b")
VARIABLE = re.compile(r"\b(?:PATCHPILOT_[A-Z0-9_]+|NVD_API_KEY|SSH_AUTH_SOCK|XDG_DATA_HOME)\b")


def test_no_module_but_config_reads_the_environment() -> None:
    readers = [f"{path.relative_to(SRC)}:{n}: {line.strip()}"
               for path in sorted(SRC.rglob("*.py")) if path != CONFIG
               for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               if READS.search(line)]
    assert readers == []


def _readme_variables() -> list[str]:
    section = README.read_text(encoding="utf-8").split("### Settings", 1)[1]
    section = section.split("\n#", 1)[0]
    return [m.group(1) for m in re.finditer(r"^\| `([A-Z0-9_]+)` \|", section, re.M)]


def test_readme_lists_every_variable_config_reads_once() -> None:
    read = set(VARIABLE.findall(CONFIG.read_text(encoding="utf-8")))
    listed = _readme_variables()
    assert len(listed) == len(set(listed))
    assert set(listed) == read
    # One field per variable, each named in its field's docstring.
    assert len(read) - 1 == len(Settings.__dataclass_fields__)  # XDG_DATA_HOME: home's default


def test_every_variable_lands_in_its_field() -> None:
    env = {"PATCHPILOT_HOME": "/srv/pp", "PATCHPILOT_DATABASE_URL": "postgresql://pp@db/pp",
           "PATCHPILOT_FEEDS_DIR": "/feeds/osv:/feeds/kev", "PATCHPILOT_MAX_UPLOAD_MB": "8",
           "PATCHPILOT_FEED_UPDATE_INTERVAL": "off", "NVD_API_KEY": "k-1",
           "PATCHPILOT_SESSION_SECRET": "s" * 40, "PATCHPILOT_WORKER_LEASE_SECONDS": "1",
           "PATCHPILOT_SSH_IDENTITY": "/keys/a:/keys/b",
           "PATCHPILOT_SSH_KNOWN_HOSTS": "/keys/known", "SSH_AUTH_SOCK": "/run/agent",
           "PATCHPILOT_SMTP_HOST": "mail.example", "PATCHPILOT_SMTP_PORT": "587",
           "PATCHPILOT_SMTP_STARTTLS": "true", "PATCHPILOT_SMTP_USER": "pp",
           "PATCHPILOT_SMTP_PASSWORD": "pw", "PATCHPILOT_SMTP_FROM": "pp@plant.example",
           "PATCHPILOT_REPORT_MAX_FINDINGS": "2000"}
    assert load_settings(env) == Settings(
        home=Path("/srv/pp"), database_url="postgresql://pp@db/pp",
        feeds_dirs=(Path("/feeds/osv"), Path("/feeds/kev")), max_upload=8 << 20,
        feed_update_hours=None, nvd_api_key="k-1", session_secret="s" * 40,
        worker_lease_seconds=2,  # at least 2
        ssh_identities=(Path("/keys/a"), Path("/keys/b")),
        ssh_known_hosts=Path("/keys/known"), ssh_auth_sock="/run/agent",
        smtp_host="mail.example", smtp_port=587, smtp_starttls=True, smtp_user="pp",
        smtp_password="pw", smtp_from="pp@plant.example", report_max_findings=2000)


def test_defaults() -> None:
    settings = load_settings({"XDG_DATA_HOME": "/data"})
    assert settings == Settings(home=Path("/data/patchpilot"),
                                database_url="sqlite:////data/patchpilot/patchpilot.db",
                                feeds_dirs=())
    assert (settings.max_upload, settings.feed_update_hours, settings.worker_lease_seconds,
            settings.ssh_known_hosts, settings.smtp_host, settings.smtp_port,
            settings.smtp_starttls, settings.report_max_findings) == (
        64 << 20, 24.0, 120, DEFAULT_KNOWN_HOSTS, "localhost", 25, False, 500)
    assert settings.smtp_sender.startswith("patchpilot@")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("PATCHPILOT_WORKER_LEASE_SECONDS", "2m",
     "PATCHPILOT_WORKER_LEASE_SECONDS: '2m' is not a whole number of seconds"),
    ("PATCHPILOT_SMTP_PORT", "smtp", "PATCHPILOT_SMTP_PORT: 'smtp' is not a port number"),
    ("PATCHPILOT_SMTP_PORT", "70000", "PATCHPILOT_SMTP_PORT: '70000' is not a port number"),
    ("PATCHPILOT_MAX_UPLOAD_MB", "0",
     "PATCHPILOT_MAX_UPLOAD_MB: '0' is not a whole number of MiB (1 or more)"),
    ("PATCHPILOT_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8, intranet",
     "PATCHPILOT_WEBHOOK_ALLOW_NETWORKS: 'intranet' is not an address range (CIDR, e.g. "
     "127.0.0.0/8)"),
    ("PATCHPILOT_DISCOVERY_SCOPE", "10.0.0.0/24, lab",
     "PATCHPILOT_DISCOVERY_SCOPE: 'lab' is not an address range (CIDR, e.g. 127.0.0.0/8)"),
    ("PATCHPILOT_DISCOVERY_RATE", "fast",
     "PATCHPILOT_DISCOVERY_RATE: 'fast' is not a whole number of packets a second (1 or "
     "more)"),
    ("PATCHPILOT_REPORT_MAX_FINDINGS", "all",
     "PATCHPILOT_REPORT_MAX_FINDINGS: 'all' is not a whole number of vulnerability blocks "
     "(1 or more)"),
])
def test_a_bad_value_is_a_config_error_naming_its_variable(name: str, value: str,
                                                           message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"PATCHPILOT_HOME": "/srv/pp", name: value})
    assert str(caught.value) == message


def test_repr_hides_the_secrets() -> None:
    text = repr(load_settings({"PATCHPILOT_HOME": "/srv/pp", "NVD_API_KEY": "k-secret",
                               "PATCHPILOT_SESSION_SECRET": "s-secret",
                               "PATCHPILOT_SMTP_PASSWORD": "p-secret",
                               "PATCHPILOT_SECRETS_KEY": "x-secret"}))
    assert "secret" not in (text.replace("session_secret", "").replace("secrets_key", "")
                            .replace("ldap_bind_password_secret", "")
                            .replace("oidc_client_secret_name", "")
                            .replace("oidc_client_secret", ""))
    assert "nvd_api_key='***'" in text and "smtp_password='***'" in text
    assert "secrets_key='***'" in text
    shown = repr(load_settings({"PATCHPILOT_HOME": "/srv/pp",
                                "PATCHPILOT_SNMP_COMMUNITY": "c-secret"}))
    assert "c-secret" not in shown and "snmp_community='***'" in shown


def test_oidc_settings() -> None:
    settings = load_settings({
        "PATCHPILOT_HOME": "/srv/pp", "PATCHPILOT_OIDC_ISSUER": "https://login.example/realm",
        "PATCHPILOT_OIDC_CLIENT_ID": "patchpilot", "PATCHPILOT_OIDC_CLIENT_SECRET": "o-secret",
        "PATCHPILOT_OIDC_GROUPS_CLAIM": "roles", "PATCHPILOT_OIDC_NAME": "Keycloak"})
    assert (settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret,
            settings.oidc_client_secret_name, settings.oidc_groups_claim,
            settings.oidc_name) == ("https://login.example/realm", "patchpilot", "o-secret",
                                    None, "roles", "Keycloak")
    assert "o-secret" not in repr(settings) and "oidc_client_secret='***'" in repr(settings)
    by_name = load_settings({"PATCHPILOT_HOME": "/srv/pp",
                             "PATCHPILOT_OIDC_ISSUER": "http://127.0.0.1:8081",
                             "PATCHPILOT_OIDC_CLIENT_ID": "pp",
                             "PATCHPILOT_OIDC_CLIENT_SECRET_NAME": "oidc-client"})
    assert (by_name.oidc_client_secret, by_name.oidc_client_secret_name,
            by_name.oidc_groups_claim, by_name.oidc_name) == (None, "oidc-client", "groups",
                                                              None)


@pytest.mark.parametrize(("env", "message"), [
    ({"PATCHPILOT_OIDC_ISSUER": "http://login.example", "PATCHPILOT_OIDC_CLIENT_ID": "pp",
      "PATCHPILOT_OIDC_CLIENT_SECRET": "s"},
     "PATCHPILOT_OIDC_ISSUER: 'http://login.example' is not an https URL (plain http only "
     "on a loopback address)"),
    ({"PATCHPILOT_OIDC_ISSUER": "https://login.example", "PATCHPILOT_OIDC_CLIENT_SECRET": "s"},
     "PATCHPILOT_OIDC_CLIENT_ID: required with PATCHPILOT_OIDC_ISSUER"),
    ({"PATCHPILOT_OIDC_ISSUER": "https://login.example", "PATCHPILOT_OIDC_CLIENT_ID": "pp"},
     "PATCHPILOT_OIDC_CLIENT_SECRET or PATCHPILOT_OIDC_CLIENT_SECRET_NAME: one is required "
     "with PATCHPILOT_OIDC_ISSUER"),
])
def test_an_incomplete_oidc_client_is_a_config_error(env: dict[str, str],
                                                     message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"PATCHPILOT_HOME": "/srv/pp", **env})
    assert str(caught.value) == message


def test_discovery_settings() -> None:
    settings = load_settings({"PATCHPILOT_HOME": "/srv/pp", "PATCHPILOT_DISCOVERY_RATE": "50",
                              "PATCHPILOT_DISCOVERY_SCOPE": "10.1.2.3/24, 192.0.2.0/28"})
    assert (settings.discovery_scope, settings.discovery_rate) == (
        ("10.1.2.0/24", "192.0.2.0/28"), 50)
    assert load_settings({"PATCHPILOT_HOME": "/srv/pp"}).discovery_scope == ()


def test_webhook_networks_are_normalised() -> None:
    settings = load_settings({"PATCHPILOT_HOME": "/srv/pp",
                              "PATCHPILOT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/8, fd00::/8,"})
    assert settings.webhook_allow_networks == ("127.0.0.0/8", "fd00::/8")
    assert load_settings({"PATCHPILOT_HOME": "/srv/pp"}).webhook_allow_networks == ()


def test_ldap_settings() -> None:
    env = {"PATCHPILOT_HOME": "/srv/pp", "PATCHPILOT_LDAP_URL": "ldap://dc1.corp.example:389",
           "PATCHPILOT_LDAP_STARTTLS": "true", "PATCHPILOT_LDAP_CA_FILE": "/etc/pp/corp-ca.pem",
           "PATCHPILOT_LDAP_BIND_DN": "CN=svc-patchpilot,OU=Service,DC=corp,DC=example",
           "PATCHPILOT_LDAP_BIND_PASSWORD_SECRET": "ldap-bind",
           "PATCHPILOT_LDAP_BIND_PASSWORD_ENV": "PP_LDAP_PW",
           "PATCHPILOT_LDAP_USER_BASE": "OU=Staff,DC=corp,DC=example",
           "PATCHPILOT_LDAP_USER_FILTER": "(sAMAccountName={username})",
           "PATCHPILOT_LDAP_GROUP_BASE": "OU=Groups,DC=corp,DC=example",
           "PATCHPILOT_LDAP_ACTIVE_DIRECTORY": "yes", "PATCHPILOT_LDAP_TIMEOUT": "9"}
    settings = load_settings(env)
    assert (settings.ldap_url, settings.ldap_starttls, settings.ldap_ca_file,
            settings.ldap_bind_dn, settings.ldap_bind_password_secret,
            settings.ldap_bind_password_env, settings.ldap_user_base,
            settings.ldap_user_filter, settings.ldap_group_base,
            settings.ldap_active_directory, settings.ldap_timeout) == (
        "ldap://dc1.corp.example:389", True, Path("/etc/pp/corp-ca.pem"),
        "CN=svc-patchpilot,OU=Service,DC=corp,DC=example", "ldap-bind", "PP_LDAP_PW",
        "OU=Staff,DC=corp,DC=example", "(sAMAccountName={username})",
        "OU=Groups,DC=corp,DC=example", True, 9)
    unset = load_settings({"PATCHPILOT_HOME": "/srv/pp"})
    assert (unset.ldap_url, unset.ldap_user_filter, unset.ldap_timeout) == (
        None, "(uid={username})", 5)


@pytest.mark.parametrize(("change", "message"), [
    ({"PATCHPILOT_LDAP_STARTTLS": "false"},
     "PATCHPILOT_LDAP_URL: 'ldap://dc1:389' would send passwords in clear: use ldaps:// or "
     "set PATCHPILOT_LDAP_STARTTLS=true"),
    ({"PATCHPILOT_LDAP_URL": "ldaps://dc1:636"},
     "PATCHPILOT_LDAP_STARTTLS: an ldaps:// connection is encrypted already; StartTLS is "
     "for ldap:// URLs"),
    ({"PATCHPILOT_LDAP_URL": "https://dc1"},
     "PATCHPILOT_LDAP_URL: 'https://dc1' is not ldaps://HOST[:PORT] or ldap://HOST[:PORT]"),
    ({"PATCHPILOT_LDAP_GROUP_BASE": ""},
     "PATCHPILOT_LDAP_GROUP_BASE: needed with PATCHPILOT_LDAP_URL (the DN to search under, "
     "e.g. ou=people,dc=example,dc=org)"),
    ({"PATCHPILOT_LDAP_USER_FILTER": "(uid=%s)"},
     "PATCHPILOT_LDAP_USER_FILTER: '(uid=%s)' is not an LDAP filter with {username} in it, "
     "e.g. (uid={username}) or (sAMAccountName={username})"),
    ({"PATCHPILOT_LDAP_TIMEOUT": "0"},
     "PATCHPILOT_LDAP_TIMEOUT: '0' is not a whole number of seconds (1 or more)"),
])
def test_bad_ldap_settings_are_refused(change: dict[str, str], message: str) -> None:
    env = {"PATCHPILOT_HOME": "/srv/pp", "PATCHPILOT_LDAP_URL": "ldap://dc1:389",
           "PATCHPILOT_LDAP_STARTTLS": "true", "PATCHPILOT_LDAP_USER_BASE": "ou=people,dc=x",
           "PATCHPILOT_LDAP_GROUP_BASE": "ou=groups,dc=x", **change}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert str(caught.value) == message
