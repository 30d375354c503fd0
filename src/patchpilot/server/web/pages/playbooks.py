"""The playbooks page: the stored playbooks (enable or disable them, their versions and
outbox counts), an editor that validates and dry-runs a document before an admin saves
it, and the dead-letter list with retry and discard.

The editor's Validate and Preview buttons post the form with hx.js and swap in the answer
(the error naming the field and position, or the table of what the playbook would have
done over the last N days): the same stage functions as ``POST /api/playbooks/validate``
and ``/preview`` (``automation.playbook``, ``automation.preview``), nothing stored or
sent.  Save is a plain form post (admins), as are enable/disable and retry/discard, each
audited by its stage.  The shipped examples (``examples/playbooks/`` of the source tree)
load into the editor as starting points; an installation without the source tree simply
offers none.

Fragments answer 200 even when they show a refusal: hx.js swaps only 2xx answers, and the
refusal is the fragment's content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from annotated_types import Ge, Le
from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine

from patchpilot.automation import outbox
from patchpilot.automation.outbox import DEAD
from patchpilot.automation.playbook import parse_playbook
from patchpilot.automation.preview import dry_run, parse_since, summary, version_document, versions
from patchpilot.automation.store import get_playbook, list_playbooks, save_playbook, set_enabled
from patchpilot.errors import InvalidInput
from patchpilot.server.deps import EngineDep
from patchpilot.server.params import MAX_DB_ID, DbId, Name200, Search, Text
from patchpilot.server.security import Role
from patchpilot.server.web.render import User, check_csrf, need, render
from patchpilot.server.web.session import WebUser

router = APIRouter(include_in_schema=False)

# src/patchpilot/server/web/pages/ -> the source tree's examples/playbooks.
EXAMPLES = Path(__file__).resolve().parents[5] / "examples" / "playbooks"
DEAD_SHOWN = 50  # dead letters the page lists
DEFAULT_DAYS = 30
Days = Annotated[int, Ge(1), Le(3650)]
VersionNo = Annotated[int, Ge(1), Le(MAX_DB_ID)]


def examples() -> dict[str, str]:
    """The shipped example playbooks by file name (none without the source tree)."""
    if not EXAMPLES.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.yaml"))}


def _board(engine: Engine) -> dict[str, Any]:
    """The playbooks with their outbox counts, the dead letters, every row by state."""
    with engine.connect() as conn:
        counts = outbox.count_by_playbook(conn)
        stored = [{**summary(p.playbook), "enabled": p.enabled, "version": p.version,
                   "updated_by": p.updated_by, "updated_at": p.updated_at,
                   "outbox": counts.get(p.id) or outbox.zero_counts()}
                  for p in list_playbooks(conn)]
        dead = outbox.list_outbox(conn, state=DEAD, limit=DEAD_SHOWN)
        states = outbox.count_states(conn)
    return {"playbooks": stored, "dead": dead, "states": states}


def _editor(engine: Engine, edit: str | None, version: int | None) -> dict[str, Any]:
    """The editor's document: a stored playbook's (current or ``version``) and its
    versions, or an empty editor."""
    if edit is None:
        return {"document": "", "editing": None, "versions": [], "shown_version": None}
    with engine.connect() as conn:
        stored = get_playbook(conn, edit)
        history = versions(conn, edit)
        if version is None:
            document, shown = stored.document, stored.version
        else:
            found, document = version_document(conn, edit, version)
            shown = found.version
    return {"document": document, "editing": stored.name, "versions": history,
            "shown_version": shown, "current_version": stored.version}


def _page(request: Request, user: WebUser, engine: Engine, *, edit: str | None = None,
          version: int | None = None, document: str | None = None,
          error: InvalidInput | None = None, saved: int | None = None,
          status_code: int = 200) -> HTMLResponse:
    editor = _editor(engine, edit, version)
    if document is not None:  # what was typed, kept after a refused save
        editor["document"] = document
    return render(request, "playbooks.html", user.language,
                  {**_board(engine), **editor, "examples": sorted(examples()),
                   "admin": user.principal.may(Role.ADMIN), "days": DEFAULT_DAYS,
                   "error": error, "saved": saved}, user, status_code=status_code)


@router.get("/playbooks")
def playbooks_page(request: Request, user: User, engine: EngineDep,
                   edit: Name200 | None = None, version: VersionNo | None = None,
                   saved: VersionNo | None = None) -> HTMLResponse:
    """The playbooks, the editor (``edit``: a stored playbook's document, ``version``:
    one of its versions) and the dead letters."""
    return _page(request, user, engine, edit=edit, version=version, saved=saved)


@router.get("/playbooks/example")
def playbook_example(request: Request, user: User, name: Search = "") -> HTMLResponse:
    """The editor's text area holding a shipped example (what the select swaps in)."""
    found = examples()
    if name and name not in found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no example playbook {name!r}")
    return render(request, "playbooks_document.html", user.language,
                  {"document": found.get(name, "")}, user)


@router.post("/playbooks/validate")
def playbook_validate(request: Request, user: User,
                      document: Annotated[Text, Form()] = "",
                      csrf: Annotated[str, Form()] = "") -> HTMLResponse:
    """Validate the editor's document (analysts): its summary, or the refusal naming the
    field and position.  Nothing is stored."""
    check_csrf(request, csrf)
    need(user, Role.ANALYST)
    try:
        parsed = parse_playbook(document, source="document")
    except InvalidInput as exc:
        return render(request, "playbooks_result.html", user.language, {"error": exc}, user)
    return render(request, "playbooks_result.html", user.language,
                  {"valid": summary(parsed)}, user)


@router.post("/playbooks/preview")
def playbook_preview(request: Request, user: User, engine: EngineDep,
                     document: Annotated[Text, Form()] = "",
                     days: Annotated[Days, Form()] = DEFAULT_DAYS,
                     csrf: Annotated[str, Form()] = "") -> HTMLResponse:
    """The dry run of the editor's document over the last ``days`` days (analysts): the
    table of what it would have done.  Nothing is stored or sent."""
    check_csrf(request, csrf)
    need(user, Role.ANALYST)
    try:
        with engine.connect() as conn:
            run = dry_run(conn, document, parse_since(f"{days}d"))
    except InvalidInput as exc:
        return render(request, "playbooks_result.html", user.language, {"error": exc}, user)
    return render(request, "playbooks_result.html", user.language,
                  {"run": run, "days": days}, user)


@router.post("/playbooks/save")
def playbook_save(request: Request, user: User, engine: EngineDep,
                  document: Annotated[Text, Form()] = "",
                  csrf: Annotated[str, Form()] = "") -> Response:
    """Store the editor's document (admins): a new playbook or its next version; the
    editor keeps the document and shows the refusal when it does not validate."""
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    try:
        with engine.begin() as conn:
            stored, _ = save_playbook(conn, user.principal.name, document, source="document")
    except InvalidInput as exc:
        return _page(request, user, engine, document=document, error=exc, status_code=422)
    return RedirectResponse(f"/playbooks?edit={stored.name}&saved={stored.version}",
                            status.HTTP_303_SEE_OTHER)


def _toggle(request: Request, user: WebUser, engine: Engine, name: str, csrf: str,
            enabled: bool) -> Response:
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    with engine.begin() as conn:
        set_enabled(conn, user.principal.name, name, enabled)
    return RedirectResponse("/playbooks", status.HTTP_303_SEE_OTHER)


@router.post("/playbooks/{name}/enable")
def playbook_enable(request: Request, name: Name200, user: User, engine: EngineDep,
                    csrf: Annotated[str, Form()] = "") -> Response:
    """Enable a playbook (admins)."""
    return _toggle(request, user, engine, name, csrf, True)


@router.post("/playbooks/{name}/disable")
def playbook_disable(request: Request, name: Name200, user: User, engine: EngineDep,
                     csrf: Annotated[str, Form()] = "") -> Response:
    """Disable a playbook (admins)."""
    return _toggle(request, user, engine, name, csrf, False)


@router.post("/outbox/{outbox_id}/retry")
def outbox_retry(request: Request, outbox_id: DbId, user: User, engine: EngineDep,
                 csrf: Annotated[str, Form()] = "") -> Response:
    """Queue a dead letter again now (admins)."""
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    with engine.begin() as conn:
        outbox.retry(conn, user.principal.name, outbox_id)
    return RedirectResponse("/playbooks#dead-letters", status.HTTP_303_SEE_OTHER)


@router.post("/outbox/{outbox_id}/discard")
def outbox_discard(request: Request, outbox_id: DbId, user: User, engine: EngineDep,
                   csrf: Annotated[str, Form()] = "") -> Response:
    """Give up on a dead letter (admins)."""
    check_csrf(request, csrf)
    need(user, Role.ADMIN)
    with engine.begin() as conn:
        outbox.discard(conn, user.principal.name, outbox_id)
    return RedirectResponse("/playbooks#dead-letters", status.HTTP_303_SEE_OTHER)
