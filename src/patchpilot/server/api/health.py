"""GET /api/health: the one route without authentication (load balancers probe it)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from patchpilot import __version__
from patchpilot.server.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(engine: EngineDep) -> dict[str, str]:
    """Whether the server and its database answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
