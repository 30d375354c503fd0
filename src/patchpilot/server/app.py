"""The FastAPI application: one router per area, every route authenticated but health."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from patchpilot import __version__
from patchpilot.server import web
from patchpilot.server.api import (
    agents,
    assets,
    cmdb,
    findings,
    groups,
    health,
    inventories,
    plan,
    reports,
    sweeps,
    tokens,
)


def create_app(engine: Engine) -> FastAPI:
    """The application, bound to ``engine`` (schema already current)."""
    app = FastAPI(title="PatchPilot", version=__version__, docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")
    app.state.engine = engine
    for module in ROUTERS:
        app.include_router(module.router, prefix="/api")
    # The dashboard's pages (not under /api, not in the OpenAPI schema).
    web.mount(app)
    return app


# The one table of API areas.  cmdb precedes assets: its /assets/unknown must be matched
# before /assets/{asset_id} would take "unknown" for an id.
ROUTERS = (health, tokens, agents, inventories, cmdb, assets, findings, groups, sweeps,
           plan, reports)
