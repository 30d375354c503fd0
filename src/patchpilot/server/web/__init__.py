"""The dashboard: server-rendered pages (Jinja2 + htmx), English and Japanese."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from patchpilot.server.web.pages import LoginRequired, router

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Add the pages, their static files and the login redirect to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if request.headers.get("hx-request"):
            # htmx would swap the login page into a table: make it load the page instead.
            return Response(status_code=204, headers={"HX-Redirect": "/login"})
        return RedirectResponse(f"/login?next={_quote(exc.next_url)}", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)


def _quote(url: str) -> str:
    from urllib.parse import quote

    return quote(url, safe="/")
