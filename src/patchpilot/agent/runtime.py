"""``patchpilot agent --server URL --enrol TOKEN``: the agent's main loop.

Pull only: the agent calls the server (HTTPS works through NAT and firewalls); the server
never connects to a host.  It enrols once (keeping its credential in its state folder,
mode 0600), uploads an inventory at start, then long-polls for jobs.  When the server is
unreachable it keeps inventories in its spool and retries with exponential backoff.  When
the server holds the agent for an admin's approval (409: its host is an asset another
agent reports for), the inventories stay spooled and the upload is retried every
``hold_retry`` seconds, with one log line per hold, while jobs are still polled.

Over https the server's certificate is always checked, host name included: against the
CA certificates of ``--ca-file`` / ``PATCHPILOT_AGENT_CA_FILE`` when given (a private CA),
else the system's trusted CAs.  A certificate the agent does not trust stops enrolment with
an error saying so and how to trust it; an enrolled agent logs that error at each retry.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from patchpilot import __version__
from patchpilot.agent.spool import Spool, SpoolFullError
from patchpilot.errors import PatchPilotError

log = logging.getLogger(__name__)


class AgentError(PatchPilotError):
    """The agent cannot go on (enrolment refused, credential revoked)."""


# Where Windows keeps machine-wide program data (not read from %ProgramData%: settings
# come from config.py alone, and this folder is the same on every installation).
WINDOWS_STATE_DIR = r"C:\ProgramData\PatchPilot\agent"


def default_state_dir() -> Path:
    """/var/lib/patchpilot-agent as root, else ~/.local/state/patchpilot-agent;
    C:\\ProgramData\\PatchPilot\\agent on Windows (``--state-dir`` for another)."""
    if sys.platform == "win32":
        return Path(WINDOWS_STATE_DIR)
    if os.geteuid() == 0:
        return Path("/var/lib/patchpilot-agent")
    return Path.home() / ".local" / "state" / "patchpilot-agent"


@dataclass(slots=True)
class AgentConfig:
    """How the agent runs."""

    server: str
    state_dir: Path
    enrol_token: str | None = None
    name: str = socket.gethostname()
    poll_wait: float = 25.0
    max_backoff: float = 300.0
    hold_retry: float = 300.0  # seconds between uploads while held for approval (409)
    python_paths: tuple[Path, ...] = ()
    ca_file: Path | None = None  # the CA certificates (PEM) the server's is checked against


class Agent:
    """One agent process."""

    def __init__(self, config: AgentConfig, *, client: httpx.Client | None = None) -> None:
        self.config = config
        self.spool = Spool(config.state_dir / "spool")
        self.client = client or httpx.Client(
            base_url=config.server.rstrip("/"), timeout=httpx.Timeout(60.0, connect=10.0),
            verify=tls_context(config.ca_file),
            headers={"User-Agent": f"patchpilot-agent/{__version__}"})
        self.credential: str | None = None
        self.failures = 0
        self.stop = threading.Event()
        # While held for approval: when to try uploading again (time.monotonic()).
        self.held_until: float | None = None

    # -- credential -------------------------------------------------------------------
    @property
    def _credential_file(self) -> Path:
        return self.config.state_dir / "credential.json"

    def ensure_enrolled(self) -> None:
        """Load the stored credential, or enrol with the token and store it (0600)."""
        if self._credential_file.exists():
            self.credential = json.loads(self._credential_file.read_text())["credential"]
            return
        if not self.config.enrol_token:
            raise AgentError("not enrolled: start once with --enrol TOKEN "
                             "(create one with `patchpilot enrol-token create`)")
        try:
            answer = self.client.post("/api/agents/enrol", json={
                "token": self.config.enrol_token, "name": self.config.name,
                "version": __version__})
        except httpx.HTTPError as exc:
            refused = untrusted_certificate(exc, self.config)
            if refused:
                raise AgentError(refused) from exc
            raise
        if answer.status_code == 401:
            raise AgentError(f"enrolment refused: {answer.json().get('detail')}")
        answer.raise_for_status()
        data = answer.json()
        self.config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._credential_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"agent_id": data["agent_id"], "credential": data["credential"],
                       "server": self.config.server}, fh)
        self.credential = data["credential"]
        log.info("enrolled as agent %s", data["agent_id"])

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}

    # -- work -------------------------------------------------------------------------
    def collect(self) -> str:
        """Collect this host's inventory into the spool; its idempotency key.  On Windows
        the one PowerShell collection script runs instead of the Linux collection."""
        from patchpilot.inventory.transports.local import collect_local, collect_local_windows

        if sys.platform == "win32":
            inventory = collect_local_windows()
        else:
            inventory = collect_local(python_paths=list(self.config.python_paths))
        data = inventory.model_copy(update={"collector": inventory.collector.model_copy(
            update={"name": "agent"})}).to_json()
        try:
            return self.spool.put(data)
        except SpoolFullError as exc:
            # Said here once, whoever called: the operator reads the agent's log.
            log.error("%s", exc)
            raise

    def flush(self) -> int:
        """Upload every spooled inventory, oldest first; how many went.  Raises
        httpx errors when the server cannot be reached (the spool keeps the rest).

        A 409 (held for an admin's approval) keeps them all spooled and stops uploading
        until ``hold_retry`` seconds have passed; it is logged once per hold."""
        if self.held_until is not None and time.monotonic() < self.held_until:
            return 0
        sent = 0
        for key, path in self.spool.pending():
            answer = self.client.post(
                "/api/inventories", content=path.read_bytes(),
                headers={**self._auth(), "Content-Encoding": "gzip",
                         "Content-Type": "application/json", "Idempotency-Key": key})
            if answer.status_code == 401:
                raise AgentError("the server refused this agent's credential (revoked?)")
            if answer.status_code == 409:
                if self.held_until is None:
                    log.warning("held by the server, %d upload(s) kept spooled, retrying "
                                "every %.0f s: %s", len(self.spool.pending()),
                                self.config.hold_retry, _detail(answer))
                self.held_until = time.monotonic() + self.config.hold_retry
                return sent
            if self.held_until is not None:
                log.info("no longer held: uploading spooled inventories")
                self.held_until = None
            if answer.status_code == 422:
                log.error("server rejected spooled inventory %s: %s", key, answer.text)
                self.spool.done(key)  # it will never be accepted; keep the rest flowing
                continue
            answer.raise_for_status()
            self.spool.done(key)
            sent += 1
        return sent

    def poll_once(self) -> dict[str, Any] | None:
        """Ask for a job (long-poll); the job or None."""
        answer = self.client.get("/api/agents/jobs", params={"wait": self.config.poll_wait},
                                 headers=self._auth(),
                                 timeout=self.config.poll_wait + 30)
        if answer.status_code == 204:
            return None
        if answer.status_code == 401:
            raise AgentError("the server refused this agent's credential (revoked?)")
        answer.raise_for_status()
        return answer.json()  # type: ignore[no-any-return]

    def run_job(self, job: dict[str, Any]) -> None:
        """Do a job and report it."""
        ok, detail, error = True, {}, None
        try:
            if job["kind"] in ("collect", "sweep_refresh"):
                key = self.collect()
                self.flush()
                detail = {"upload": key}
            else:
                ok, error = False, f"this agent does not know job kind {job['kind']!r}"
        except (PatchPilotError, OSError) as exc:
            ok, error = False, f"{exc.__class__.__name__}: {exc}"
        self.client.post(f"/api/agents/jobs/{job['id']}/result", headers=self._auth(),
                         json={"ok": ok, "detail": detail, "error": error})

    def backoff(self) -> float:
        """Seconds to wait after the n-th failure in a row: 1, 2, 4, … capped, jittered."""
        base = min(self.config.max_backoff, 2.0 ** min(self.failures, 16))
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography

    def run(self, *, once: bool = False, initial_upload: bool = True) -> None:
        """Enrol, upload an inventory, then serve jobs until stopped."""
        self.ensure_enrolled()
        if initial_upload:
            try:
                self.collect()
            except SpoolFullError:
                pass  # logged; the spooled older inventories still go out below
        while not self.stop.is_set():
            try:
                self.flush()
                job = self.poll_once()
                if job is not None:
                    self.run_job(job)
                self.failures = 0
            except httpx.HTTPError as exc:
                self.failures += 1
                delay = self.backoff()
                refused = untrusted_certificate(exc, self.config)
                if refused:
                    # Not a network hiccup: said as an error, in words that say what to do.
                    log.error("%s; %d upload(s) spooled, retrying in %.0f s", refused,
                              len(self.spool.pending()), delay)
                    self.stop.wait(delay)
                    continue
                log.warning("server unreachable (%s); %d upload(s) spooled, retrying in "
                            "%.0f s", exc.__class__.__name__, len(self.spool.pending()), delay)
                self.spool.prune()
                self.stop.wait(delay)
                continue
            if once:
                return


def _detail(answer: httpx.Response) -> str:
    """The server's explanation of a refusal (its JSON ``detail``, else the body)."""
    try:
        return str(answer.json().get("detail", answer.text))
    except ValueError:
        return answer.text


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The TLS settings the agent connects with: certificate and host name checked, against
    the CA certificates in ``ca_file`` (PEM) when given, else the system's trusted CAs.
    AgentError when ``ca_file`` cannot be read or holds no certificate."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError as exc:
        raise AgentError(f"CA file {ca_file} (--ca-file / PATCHPILOT_AGENT_CA_FILE) does "
                         "not exist") from exc
    except ssl.SSLError as exc:  # before OSError, its base
        raise AgentError(f"CA file {ca_file} (--ca-file / PATCHPILOT_AGENT_CA_FILE) holds no "
                         f"PEM certificate it can use ({exc.reason or exc})") from exc
    except OSError as exc:
        raise AgentError(f"CA file {ca_file} (--ca-file / PATCHPILOT_AGENT_CA_FILE) cannot "
                         f"be read: {exc.strerror or exc}") from exc


def untrusted_certificate(exc: BaseException, config: AgentConfig) -> str | None:
    """What to tell the operator when ``exc`` is the server's TLS certificate failing the
    check (None for any other failure)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLCertVerificationError):
            break
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, ssl.SSLCertVerificationError):
        return None
    reason = cause.verify_message or cause.reason or str(cause)
    trusted = (f"the CA certificates in {config.ca_file}" if config.ca_file
               else "the system's trusted CAs")
    return (f"the server's TLS certificate at {config.server} was refused: {reason} "
            f"(checked against {trusted}); if a private CA signed it, give that CA's "
            "certificate (PEM) with --ca-file or PATCHPILOT_AGENT_CA_FILE")
