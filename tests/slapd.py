"""A real OpenLDAP ``slapd`` on loopback ports, for the LDAP sign-in tests.

``start_slapd`` makes a test CA and a server certificate (for ``localhost``
only) with ``cryptography``, writes a ``slapd.conf`` of its own (Debian's schemas,
an mdb database under a temporary folder, TLS with that certificate), loads the
directory with ``slapadd`` and runs ``slapd -d`` (foreground) listening on an ``ldap://``
port (StartTLS) and an ``ldaps://`` port, both on 127.0.0.1 only.  The system's slapd
configuration is never read or touched.

The test directory (``dc=example,dc=org``)::

    ou=people: alice (in plant1-team), bob (in plant1-night-shift, itself a member of
               plant1-team), carol (auditors), dave (no group), "star*" (a name with a
               filter character); each with the password "<uid>-pw-1"
    ou=services: cn=patchpilot, the service account (password SERVICE_PASSWORD)
    ou=groups: plant1-team (groupOfNames: alice, plant1-night-shift),
               plant1-night-shift (groupOfUniqueNames: bob), auditors (groupOfNames: carol)
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMAS = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
LOOPBACK = "127.0.0.1"
SUFFIX = "dc=example,dc=org"
SERVICE_DN = f"cn=patchpilot,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "svc-Secret-9f2c41"


def password_of(uid: str) -> str:
    """The test directory's password of user ``uid``."""
    return f"{uid}-pw-1"


def slapd_problem() -> str | None:
    """Why a real slapd cannot be started here, or None."""
    for path in (SLAPD, SLAPADD, SCHEMAS / "core.schema"):
        if not path.exists():
            return f"{path} is missing (apt-get install slapd ldap-utils)"
    return None


def slapd_or_skip() -> None:
    """Skip when slapd is missing -- except under CI=true, where that fails the run."""
    import pytest

    problem = slapd_problem()
    if problem:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot start slapd under CI=true: {problem}")
        pytest.skip(problem)


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def make_ca(folder: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey,
                                              x509.Certificate]:
    """A self-signed test CA: (its PEM file, key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def server_cert(folder: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                *, names: Sequence[x509.GeneralName],
                files: tuple[str, str] = ("server.pem", "server.key")) -> tuple[Path, Path]:
    """A server certificate for ``names`` (its subject alternative names; the first names
    its subject too) signed by the test CA: (the certificate's PEM file, the key's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        str(names[0].value))]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / files[0], folder / files[1]
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _person(uid: str, name: str) -> str:
    return (f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {name}\nsn: {name.split()[-1]}\nuserPassword: {password_of(uid)}\n")


def directory_ldif() -> str:
    """The test directory as LDIF (slapadd's input)."""
    people = f"ou=people,{SUFFIX}"
    groups = f"ou=groups,{SUFFIX}"
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        "o: Example Plant\n",
        f"dn: {people}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {groups}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: patchpilot\nuserPassword: {SERVICE_PASSWORD}\n",
        _person("alice", "Alice Abe"), _person("bob", "Bob Baba"),
        _person("carol", "Carol Chiba"), _person("dave", "Dave Doi"),
        _person("star*", "Star Sato"),
        f"dn: cn=plant1-night-shift,{groups}\nobjectClass: groupOfUniqueNames\n"
        f"cn: plant1-night-shift\nuniqueMember: uid=bob,{people}\n",
        f"dn: cn=plant1-team,{groups}\nobjectClass: groupOfNames\ncn: plant1-team\n"
        f"member: uid=alice,{people}\nmember: cn=plant1-night-shift,{groups}\n",
        f"dn: cn=auditors,{groups}\nobjectClass: groupOfNames\ncn: auditors\n"
        f"member: uid=carol,{people}\n",
    ]
    return "\n".join(entries)


@dataclass
class LdapServer:
    """A running slapd: its ports, the CA its certificate chains to, and its log."""

    folder: Path
    port: int  # ldap:// (StartTLS)
    tls_port: int  # ldaps://
    ca_file: Path
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def ldaps_url(self) -> str:
        """The LDAPS URL (host name ``localhost``, as in the certificate)."""
        return f"ldaps://localhost:{self.tls_port}"

    @property
    def ldap_url(self) -> str:
        """The plain URL StartTLS upgrades."""
        return f"ldap://localhost:{self.port}"

    def stop(self) -> None:
        """Stop slapd -- only the process this helper started."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _config(folder: Path, ca: Path, cert: Path, key: Path) -> Path:
    schemas = "\n".join(f"include {SCHEMAS / n}.schema"
                        for n in ("core", "cosine", "inetorgperson", "nis"))
    text = f"""{schemas}
modulepath {MODULES}
moduleload back_mdb
pidfile {folder / 'slapd.pid'}
argsfile {folder / 'slapd.args'}
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
# Simple binds with a password only over TLS (ssf 128): as a real directory is set up.
security simple_bind=128
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
directory {folder / 'db'}
access to attrs=userPassword by anonymous auth by * none
access to * by users read by * none
"""
    path = folder / "slapd.conf"
    path.write_text(text)
    return path


def start_slapd(folder: Path) -> LdapServer:
    """Start slapd with the test directory on two free loopback ports."""
    problem = slapd_problem()
    if problem:
        raise RuntimeError(problem)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db").mkdir(exist_ok=True)
    ca_file, ca_key, ca_cert = make_ca(folder, "test-ca")
    # localhost only: ldaps://127.0.0.1 reaches the same slapd under a name the
    # certificate does not give (the host-name check's test).
    cert, key = server_cert(folder, ca_key, ca_cert, names=[x509.DNSName("localhost")])
    config = _config(folder, ca_file, cert, key)
    ldif = folder / "directory.ldif"
    ldif.write_text(directory_ldif())
    subprocess.run([str(SLAPADD), "-f", str(config), "-l", str(ldif)], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)
    port, tls_port = free_port(), free_port()
    log = folder / "slapd.log"
    urls = f"ldap://{LOOPBACK}:{port}/ ldaps://{LOOPBACK}:{tls_port}/"
    with log.open("wb") as handle:
        # -d 256 (stats): foreground, one line per operation on stderr.
        process = subprocess.Popen(
            [str(SLAPD), "-f", str(config), "-h", urls, "-d", "256"],
            stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LdapServer(folder, port, tls_port, ca_file, log, process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"slapd exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            for each in (port, tls_port):
                with socket.create_connection((LOOPBACK, each), timeout=0.5):
                    pass
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"slapd did not listen within 15 s: {log.read_text()[-2000:]}")
