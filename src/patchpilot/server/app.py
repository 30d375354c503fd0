"""The FastAPI application: one router per area, every route authenticated but health."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from patchpilot import __version__
from patchpilot.config import load_settings
from patchpilot.server import busy, readonly, web
from patchpilot.server.api import (
    agents,
    assets,
    cmdb,
    devices,
    events,
    findings,
    groups,
    health,
    hooks,
    imports,
    inventories,
    plan,
    playbooks,
    reports,
    secrets,
    sweeps,
    tokens,
    users,
)
from patchpilot.server.headers import SecurityHeaders
from patchpilot.server.limits import BodyLimit


def create_app(engine: Engine, *, max_upload: int | None = None,
               max_import: int | None = None,
               trusted_proxies: tuple[str, ...] | None = None) -> FastAPI:
    """The application, bound to ``engine`` (schema already current).  ``max_upload``:
    the largest upload in bytes (default: the ``PATCHPILOT_MAX_UPLOAD_MB`` setting);
    ``max_import``: the largest scanner report (default: ``PATCHPILOT_MAX_IMPORT_MB``);
    ``trusted_proxies``: the reverse proxies whose forwarded headers are believed
    (default: ``PATCHPILOT_TRUSTED_PROXIES``)."""
    app = FastAPI(title="PatchPilot", version=__version__, docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")
    app.state.engine = engine
    settings = load_settings()
    app.state.max_upload = settings.max_upload if max_upload is None else max_upload
    app.state.max_import = settings.max_import if max_import is None else max_import
    # Where uploaded scanner reports wait for their import job (importers.apply.spool_dir).
    app.state.home = settings.home
    for module in ROUTERS:
        app.include_router(module.router, prefix="/api")
    # The dashboard's pages (not under /api, not in the OpenAPI schema).
    web.mount(app)
    # A write that cannot get SQLite's lock: 503 with Retry-After (issue 10, item 11).
    busy.install(app)
    # A write to a read-only database: 503 naming it (issue 10, item 12); wraps busy's.
    readonly.install(app)
    # The last added runs first: the security headers go on every answer, the body
    # limit's 413 included.
    app.add_middleware(BodyLimit, max_upload=app.state.max_upload,
                       max_import=app.state.max_import)
    app.add_middleware(SecurityHeaders)
    # Outermost: behind a trusted reverse proxy the request is the client's before anything
    # looks at it -- its address (session rows, login throttling, lockout audit rows) from
    # X-Forwarded-For, its scheme (Secure cookies, HSTS) from X-Forwarded-Proto.  A peer
    # outside the list is taken as it is, its forwarded headers ignored (they are the
    # client's to forge).  The server runs uvicorn without its own proxy handling
    # (server.run), which would trust 127.0.0.1 whatever the setting.
    proxies = settings.trusted_proxies if trusted_proxies is None else trusted_proxies
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(proxies))
    return app


# The one table of API areas.  cmdb precedes assets: its /assets/unknown must be matched
# before /assets/{asset_id} would take "unknown" for an id.
ROUTERS = (health, tokens, agents, inventories, cmdb, assets, devices, findings, groups, sweeps,
           plan, reports, events, imports, playbooks, hooks, secrets, users)
