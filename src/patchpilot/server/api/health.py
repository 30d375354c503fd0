"""GET /api/health: the one route without authentication (load balancers probe it)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from patchpilot import __version__
from patchpilot.db.engine import write_problem
from patchpilot.server.deps import EngineDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The server and its database answer and take writes."""

    status: str = Field(examples=["ok"])
    version: str


class Degraded(BaseModel):
    """The database refuses writes (``read-only: …``) or does not answer
    (``unreachable: …``)."""

    status: str = Field(examples=["degraded"])
    database: str
    version: str


@router.get("/health", response_model=Health,
            responses={503: {"model": Degraded,
                             "description": "the database cannot be read or written"}})
def health(engine: EngineDep) -> Any:
    """Whether the server and its database answer, and whether the database takes writes.

    200 ``{"status": "ok", …}``; 503 ``{"status": "degraded", "database": "read-only: …"}``
    when it refuses writes (every change would fail) or ``"unreachable: …"`` when it does
    not answer, so a load balancer takes the process out of rotation.  The write check is
    a real write, rolled back (``db.engine.write_problem``): a file's mode says nothing
    when the server runs as root or the file system is mounted read-only.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        problem = write_problem(engine)
    except Exception as exc:  # noqa: BLE001 - whatever the database says, the probe answers
        problem = f"unreachable: {exc.__class__.__name__}: " \
                  f"{str(getattr(exc, 'orig', None) or exc).splitlines()[0]}"
    if problem:
        return JSONResponse({"status": "degraded", "database": problem,
                             "version": __version__}, status_code=503)
    return {"status": "ok", "version": __version__}
