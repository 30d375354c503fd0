"""``patchpilot worker``: take jobs from the database and run them.

One handler per job kind, in one table.  Any number of workers may run, on any machines
that reach the database; the embedded default runs one inside the server.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from patchpilot.db.tables import inventories
from patchpilot.errors import PatchPilotError
from patchpilot.findings.lifecycle import apply_findings
from patchpilot.findings.scan import scan_inventory
from patchpilot.inventory.model import Inventory
from patchpilot.scans import jobs

log = logging.getLogger(__name__)

Handler = Callable[[Engine, jobs.Job], dict[str, Any]]


def run_match(engine: Engine, job: jobs.Job) -> dict[str, Any]:
    """Match a stored inventory and update its asset's findings."""
    inventory_id = int(job.payload["inventory_id"])
    with engine.connect() as conn:
        row = conn.execute(select(inventories.c.asset_id, inventories.c.document)
                           .where(inventories.c.id == inventory_id)).one()
    inventory = Inventory.from_json(row.document, f"inventory {inventory_id}")
    result = scan_inventory(engine, inventory)
    counts = apply_findings(engine, row.asset_id, list(result.findings),
                            complete=inventory.complete)
    return {"asset_id": row.asset_id, "findings": len(result.findings), "new": counts.new,
            "reopened": counts.reopened, "fixed": counts.fixed,
            "undetermined": len(result.undetermined)}


# The one table of job kinds this worker runs; other modules add theirs with register().
HANDLERS: dict[str, Handler] = {"match": run_match}


def register(kind: str, handler: Handler) -> None:
    """Add a job kind."""
    HANDLERS[kind] = handler


def worker_name() -> str:
    """host:pid:thread, unique per running worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def run_once(engine: Engine, owner: str | None = None) -> jobs.Job | None:
    """Take one ready job and run it; the job, or None when there was none."""
    owner = owner or worker_name()
    job = jobs.lease(engine, owner, kinds=tuple(HANDLERS))
    if job is None:
        return None
    try:
        result = HANDLERS[job.kind](engine, job)
    except (PatchPilotError, KeyError, ValueError) as exc:
        log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
        jobs.finish(engine, job.id, owner, error=f"{exc.__class__.__name__}: {exc}")
    except Exception as exc:
        log.exception("job %s (%s) crashed", job.id, job.kind)
        jobs.finish(engine, job.id, owner, error=f"{exc.__class__.__name__}: {exc}")
    else:
        jobs.finish(engine, job.id, owner, result=result)
    return job


def run_forever(engine: Engine, stop: threading.Event, *, idle_seconds: float = 0.5) -> None:
    """Run jobs until ``stop`` is set, sleeping briefly when there is nothing to do."""
    owner = worker_name()
    while not stop.is_set():
        try:
            job = run_once(engine, owner)
        except Exception:
            log.exception("worker loop error")  # the database may be restarting
            job = None
        if job is None:
            jobs.fail_expired(engine)
            stop.wait(idle_seconds)
        else:
            time.sleep(0)


def run_expire_decisions(engine: Engine, job: jobs.Job) -> dict[str, Any]:
    """Reopen findings whose risk acceptance expired (and re-apply every decision)."""
    from patchpilot.findings.lifecycle import reapply_decisions

    with engine.begin() as conn:
        return {"changed": reapply_decisions(conn)}


register("expire_decisions", run_expire_decisions)
