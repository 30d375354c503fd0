"""The dashboard: server-rendered pages (Jinja2 + the small static/hx.js), English and Japanese.

``pages/`` holds one module per page (its routes, and what it alone needs) and the table
of their routers; ``render.py`` what every page shares: the template environment, the
logged-in user, the filters; ``uploads.py`` the streamed form reader of the two upload
pages; ``imports.py`` the scanner report upload the imports page and ``POST /api/imports``
share; ``session.py`` and ``i18n.py`` the sessions and the languages.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from patchpilot.errors import Conflict, InvalidInput, NotFound
from patchpilot.server.web.pages import ROUTERS
from patchpilot.server.web.render import LoginRequired, error_page

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Add the pages, their static files, the login redirect and the HTML error pages
    (403, 404, …) of the dashboard to ``app``."""
    # The pages' one table (``pages.ROUTERS``: one router per page module, in order).
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if request.headers.get("hx-request"):
            # hx.js would swap the login page into a table: make it load the page instead.
            return Response(status_code=204, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={_quote(exc.next_url)}", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)

    async def html_errors(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _is_api(request):
            # The API keeps FastAPI's JSON answer ({"detail": …}) for its clients.
            return await http_exception_handler(request, exc)
        # A page (or no page at all): an HTML page in the user's language.  Reading the
        # session touches the database, so off the event loop.
        return await run_in_threadpool(error_page, request, exc)

    # Registered for Starlette's HTTPException, so that it also catches the router's own
    # 404 (no such path) and 405, not only the routes' FastAPI HTTPExceptions.
    app.add_exception_handler(StarletteHTTPException, html_errors)

    async def html_validation_errors(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_api(request):
            return await request_validation_exception_handler(request, exc)
        errors = exc.errors()
        if any(e.get("loc", ("",))[0] == "path" for e in errors):
            # /assets/abc: there is no such page, whatever the parameter's type.
            problem = StarletteHTTPException(404)
        else:
            problem = StarletteHTTPException(400, "; ".join(
                f"{e['loc'][-1]}: {e.get('msg', 'invalid')}" for e in errors))
        return await run_in_threadpool(error_page, request, problem)

    app.add_exception_handler(RequestValidationError, html_validation_errors)

    async def stage_errors(request: Request, exc: Exception) -> Response:
        # The one place a stage's error kind becomes an HTTP status: the routes and pages
        # let NotFound / Conflict / InvalidInput through, and the answer is the same as an
        # HTTPException's (JSON {"detail": message} under /api, the error page elsewhere).
        code = next(code for kind, code in STATUS_OF_KIND if isinstance(exc, kind))
        return await html_errors(request, StarletteHTTPException(code, str(exc)))

    for kind, _ in STATUS_OF_KIND:
        app.add_exception_handler(kind, stage_errors)


# A stage's error kind and its HTTP status.  Checked in this order: a kind may derive from
# two of them (``assets.groups.NotFound`` is also a GroupError, an InvalidInput), and the
# more specific answer wins.
STATUS_OF_KIND: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404), (Conflict, 409), (InvalidInput, 422))


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path == "/api" or path.startswith("/api/")


def _quote(url: str) -> str:
    from urllib.parse import quote

    return quote(url, safe="/")
