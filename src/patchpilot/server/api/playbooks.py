"""Playbooks over HTTP: list, show (with versions), store a new version, enable, disable,
validate and dry-run a document; the outbox (the dead-letter list among it) with retry
and discard.

Who may do what: viewers read, analysts validate and dry-run (nothing is stored), admins
store, enable and disable playbooks and retry or discard outbox rows -- each of those
audited by the stage (``automation.store``, ``automation.outbox``).

A document that cannot be used is a 422 whose body names the field as well as saying it:
``{"detail": "condition: does not compile at line 1, column 21: …", "field":
"condition"}`` (``field`` is null for YAML syntax, whose message names the line).  A
document is sent as JSON ``{"document": "<YAML>"}`` or, to ``PUT``, as the YAML itself
(``Content-Type: text/yaml`` or ``application/yaml``), as ``curl --data-binary @file``
would.

The outbox rows never show a secret: the payload is the event's context, the target what
the action names for its rate limit, and an action's settings stay in the playbook.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from patchpilot.automation import outbox
from patchpilot.automation.playbook import parse_playbook
from patchpilot.automation.preview import (
    dry_run,
    parse_since,
    summary,
    version_document,
    versions,
)
from patchpilot.automation.store import (
    StoredPlaybook,
    get_playbook,
    list_playbooks,
    save_playbook,
    set_enabled,
)
from patchpilot.errors import InvalidInput
from patchpilot.server.deps import Admin, Analyst, EngineDep, Viewer
from patchpilot.server.params import MAX_DB_ID, DbId, Limit, Name200, Text, no_nul

router = APIRouter(tags=["playbooks"])

# What one document may be: far above any real playbook, far below the body limit.
MAX_DOCUMENT = 256 * 1024
YAML_TYPES = ("text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml")
Cursor = Annotated[int, Ge(0), Le(MAX_DB_ID)]
Version = Annotated[int, Ge(1), Le(MAX_DB_ID)]
# automation.outbox.STATES, spelt out so that the OpenAPI schema lists them.
OutboxState = Literal["queued", "sent", "failed", "dead", "discarded"]
REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "the document does not validate: ``detail`` says why, ``field`` "
                         "names the field (null for YAML syntax)"}}


CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the row is neither failed nor dead"}}


# --- bodies and answers ------------------------------------------------------------------

class DocumentIn(BaseModel):
    """A playbook's YAML."""

    document: Annotated[Text, Field(max_length=MAX_DOCUMENT)]


class PreviewIn(DocumentIn):
    """A playbook's YAML and how far back to run it: a duration (``30d``, ``12h``) or an
    ISO 8601 moment."""

    since: Annotated[Text, Field(max_length=40)] = "30d"


class ScheduleOut(BaseModel):
    """A schedule trigger: cron, read in an IANA time zone."""

    cron: str
    timezone: str


class SummaryOut(BaseModel):
    """A validated playbook: its trigger, condition and the types of its actions."""

    name: str
    description: str
    enabled: bool
    events: list[str]
    schedule: ScheduleOut | None
    condition: str | None
    actions: list[str]


class PlaybookOut(SummaryOut):
    """A stored playbook at its current version, and its outbox rows counted by state."""

    id: int
    version: int
    updated_by: str
    updated_at: datetime
    outbox: dict[str, int]


class VersionOut(BaseModel):
    """One stored version."""

    version: int
    created_by: str
    created_at: datetime


class PlaybookDetail(PlaybookOut):
    """A stored playbook: its current document (the YAML as written) and every version,
    newest first."""

    document: str
    versions: list[VersionOut]


class VersionDocument(VersionOut):
    """One version's YAML."""

    name: str
    document: str


class ValidOut(BaseModel):
    """A document that validates."""

    valid: bool
    summary: SummaryOut


class DryRunItem(BaseModel):
    """One action the playbook would have queued: for which event (id, kind, moment),
    about what (subject, asset, vulnerability and its severity)."""

    event_id: int
    kind: str
    at: str | None
    subject: str
    action_index: int
    action: str
    asset: str | None
    vuln_id: str | None
    severity: str | None


class DryRunOut(BaseModel):
    """The dry run: the first ``shown`` of ``total`` actions (``capped`` when that is not
    all of them), over ``events`` events since ``since``.  Nothing was sent or stored."""

    since: datetime
    total: int
    events: int
    shown: int
    capped: bool
    items: list[DryRunItem]


class OutboxRowOut(BaseModel):
    """One action of one playbook for one event: its state (queued, sent, failed, dead,
    discarded), attempts, where it went, what went wrong last and what it gave."""

    id: int
    playbook: str
    playbook_version: int
    event_id: int
    action_index: int
    action_type: str
    subject: str
    state: str
    attempts: int
    step: int
    next_attempt_at: datetime
    created_at: datetime
    done_at: datetime | None
    target: str | None
    last_error: str | None
    outcome: dict[str, Any] | None
    payload: dict[str, Any]


class OutboxPage(BaseModel):
    """A page of outbox rows (oldest first), the cursor of the next page (``after=next``)
    and every row counted by state."""

    rows: list[OutboxRowOut]
    next: int
    counts: dict[str, int]


# --- helpers -----------------------------------------------------------------------------

def _refused(exc: InvalidInput) -> JSONResponse:
    """A 422 naming the field beside the message (the stage's errors say both)."""
    return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=422)


def _out(stored: StoredPlaybook, counts: dict[str, int] | None) -> dict[str, Any]:
    # ``enabled`` is the stored flag: enable/disable change it without a new version.
    return {**summary(stored.playbook), "enabled": stored.enabled, "id": stored.id,
            "version": stored.version,
            "updated_by": stored.updated_by, "updated_at": stored.updated_at,
            "outbox": counts or outbox.zero_counts()}


async def _document(request: Request) -> str:
    """The YAML of a PUT: JSON ``{"document": …}`` or the YAML itself."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if kind in YAML_TYPES:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(422, f"document: not UTF-8 ({exc.reason} at byte "
                                     f"{exc.start})") from exc
        try:
            no_nul(text)
        except ValueError as exc:
            raise HTTPException(422, f"document: {exc}") from exc
        if len(text) > MAX_DOCUMENT:
            raise HTTPException(422, f"document: longer than {MAX_DOCUMENT} characters")
        return text
    if kind not in ("application/json", ""):
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            "send JSON {\"document\": …} or the YAML as text/yaml")
    try:
        return DocumentIn.model_validate_json(body).document
    except ValidationError as exc:
        raise HTTPException(422, "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        ) from None


# --- playbooks ---------------------------------------------------------------------------

@router.get("/playbooks", response_model=list[PlaybookOut])
def playbooks_list(who: Viewer, engine: EngineDep) -> list[dict[str, Any]]:
    """Every playbook by name, at its current version, with its outbox counts."""
    with engine.connect() as conn:
        counts = outbox.count_by_playbook(conn)
        return [_out(p, counts.get(p.id)) for p in list_playbooks(conn)]


@router.post("/playbooks/validate", response_model=ValidOut, responses=REFUSED)
def playbook_validate(body: DocumentIn, who: Analyst) -> Any:
    """Validate a document (analysts): its summary, or a 422 naming the field.  Nothing is
    stored."""
    try:
        parsed = parse_playbook(body.document, source="document")
    except InvalidInput as exc:
        return _refused(exc)
    return {"valid": True, "summary": summary(parsed)}


@router.post("/playbooks/preview", response_model=DryRunOut, responses=REFUSED)
def playbook_preview(body: PreviewIn, who: Analyst, engine: EngineDep) -> Any:
    """Dry run (analysts): what the document would have queued over the stored events
    since ``since`` (the first 200 actions, and how many in all).  Sends and stores
    nothing, whether a playbook of its name is stored or not."""
    try:
        since = parse_since(body.since)
        with engine.connect() as conn:
            return dry_run(conn, body.document, since).to_dict()
    except InvalidInput as exc:
        return _refused(exc)


@router.get("/playbooks/{name}", response_model=PlaybookDetail)
def playbook_show(name: Name200, who: Viewer, engine: EngineDep) -> dict[str, Any]:
    """One playbook: its current document and summary, its outbox counts, its versions."""
    with engine.connect() as conn:
        stored = get_playbook(conn, name)
        counts = outbox.count_by_playbook(conn).get(stored.id)
        history = versions(conn, name)
    return {**_out(stored, counts), "document": stored.document,
            "versions": [{"version": v.version, "created_by": v.created_by,
                          "created_at": v.created_at} for v in history]}


@router.get("/playbooks/{name}/versions/{version}", response_model=VersionDocument)
def playbook_version(name: Name200, version: Version, who: Viewer, engine: EngineDep
                     ) -> dict[str, Any]:
    """One version's document, as it was stored."""
    with engine.connect() as conn:
        found, document = version_document(conn, name, version)
    return {"name": name, "version": found.version, "created_by": found.created_by,
            "created_at": found.created_at, "document": document}


@router.put("/playbooks/{name}", response_model=PlaybookOut,
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/json": {"schema": {
                    "type": "object", "required": ["document"],
                    "properties": {"document": {"type": "string",
                                                "maxLength": MAX_DOCUMENT}}}},
                "text/yaml": {"schema": {"type": "string", "maxLength": MAX_DOCUMENT}}}}},
            responses={201: {"description": "a new playbook",
                             "content": {"application/json": {"schema": {
                                 "$ref": "#/components/schemas/PlaybookOut"}}}},
                       415: {"description": "neither JSON nor YAML"}, **REFUSED})
async def playbook_put(name: Name200, request: Request, response: Response, who: Admin,
                       engine: EngineDep) -> Any:
    """Store a document as the playbook ``name`` (admins): a new playbook (201) or its next
    version (200; the same document again changes nothing).  The document's ``name``
    must be ``name``.  Audited."""
    document = await _document(request)
    try:
        parsed = parse_playbook(document, source="document")
        if parsed.name != name:
            raise InvalidInput(f"name: the document is named {parsed.name!r}, not {name!r} "
                               f"as the path says", field="name")
        with engine.begin() as conn:
            stored, created = save_playbook(conn, who.name, document, source="document")
            counts = outbox.count_by_playbook(conn).get(stored.id)
    except InvalidInput as exc:
        return _refused(exc)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _out(stored, counts)


def _toggle(name: str, enabled: bool, actor: str, engine: Any) -> dict[str, Any]:
    with engine.begin() as conn:
        stored = set_enabled(conn, actor, name, enabled)
        counts = outbox.count_by_playbook(conn).get(stored.id)
    return _out(stored, counts)


@router.post("/playbooks/{name}/enable", response_model=PlaybookOut)
def playbook_enable(name: Name200, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Enable a playbook (admins; no new version).  Audited."""
    return _toggle(name, True, who.name, engine)


@router.post("/playbooks/{name}/disable", response_model=PlaybookOut)
def playbook_disable(name: Name200, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Disable a playbook (admins; its queued actions are still delivered).  Audited."""
    return _toggle(name, False, who.name, engine)


# --- the outbox --------------------------------------------------------------------------

@router.get("/outbox", response_model=OutboxPage)
def outbox_list(who: Viewer, engine: EngineDep, state: OutboxState | None = None,
                playbook: Name200 | None = None, after: Cursor = 0,
                limit: Limit = outbox.PAGE) -> dict[str, Any]:
    """Outbox rows with an id above ``after``, oldest first, of ``state`` (``dead``: the
    dead-letter list) and ``playbook`` when given."""
    with engine.connect() as conn:
        rows = outbox.list_outbox(conn, state=state, playbook=playbook, after=after,
                                  limit=limit)
        counts = outbox.count_states(conn)
    return {"rows": [r.to_dict() for r in rows], "next": rows[-1].id if rows else after,
            "counts": counts}


@router.post("/outbox/{outbox_id}/retry", response_model=OutboxRowOut,
             responses=CONFLICT)
def outbox_retry(outbox_id: DbId, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Queue a failed or dead row again now, its attempts at zero (admins).  Audited."""
    with engine.begin() as conn:
        return outbox.retry(conn, who.name, outbox_id).to_dict()


@router.post("/outbox/{outbox_id}/discard", response_model=OutboxRowOut,
             responses=CONFLICT)
def outbox_discard(outbox_id: DbId, who: Admin, engine: EngineDep) -> dict[str, Any]:
    """Give up on a failed or dead row: ``discarded``, never delivered (admins).
    Audited."""
    with engine.begin() as conn:
        return outbox.discard(conn, who.name, outbox_id).to_dict()

