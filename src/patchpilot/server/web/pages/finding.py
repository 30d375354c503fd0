"""One finding: its eight report fields, the priority reason, the evidence
(``findings.queries.finding_detail``), and the triage form (analysts).  A finding a
scanner's report gave also shows who reported it, the scanner's own output and solution,
and which fields came from the report and which from the knowledge base.

The triage form's rules are the stage's (``findings.triage.check_decision``, which the
API checks too), said here in the user's language; the decision is stored by
``findings.triage.record_decision``, as the API stores it.

A user limited to part of the estate sees and triages their assets' findings only: any
other id is the 404 page an unknown one gets, and their form offers "this asset" alone
(a decision for every asset would reach outside their part: ``check_reach``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from patchpilot.automation.tickets import Ticket, tickets_of_finding
from patchpilot.findings.queries import finding_detail
from patchpilot.findings.triage import (
    TriageError,
    check_decision,
    check_reach,
    record_decision,
)
from patchpilot.importers.convert import KNOWLEDGE, REPORT
from patchpilot.knowledge.jvn_text import JvnText, jvn_text
from patchpilot.server.deps import EngineDep, scope_aware
from patchpilot.server.params import DbId, Search, Text
from patchpilot.server.security import Principal, Role, reach
from patchpilot.server.web import i18n
from patchpilot.server.web.render import User, check_csrf, need, render

router = APIRouter(include_in_schema=False)


DECISIONS = ("accepted", "false_positive", "not_affected")
# Where an imported finding's field came from (``importers.convert``): data words the
# page translates.
FIELD_SOURCES = (REPORT, KNOWLEDGE, f"{REPORT} + {KNOWLEDGE}")


def fields_by_source(data: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """An imported finding's ``field_sources`` grouped: (source, its fields), the report
    first -- one line per source on the page rather than one per field."""
    grouped: dict[str, list[str]] = {}
    for name, source in sorted((data.get("field_sources") or {}).items()):
        grouped.setdefault(source, []).append(name)
    return sorted(grouped.items(), key=lambda kv: (not kv[0].startswith(REPORT), kv[0]))


def _finding(engine: EngineDep, finding_id: int, principal: Principal
             ) -> tuple[Any, dict[str, Any], frozenset[int] | None]:
    """The finding's row and report fields (``findings.queries``; NotFound: a 404 page,
    also for a finding outside the user's part of the estate) and what the user sees."""
    with engine.connect() as conn:
        seen = reach(conn, principal)
        found = finding_detail(conn, finding_id, seen)
    return found.row, found.data, seen


def _tickets(engine: EngineDep, finding_id: int) -> list[Ticket]:
    """The tickets playbooks opened for the finding (``automation.tickets``)."""
    with engine.connect() as conn:
        return tickets_of_finding(conn, finding_id)


def _jvn(engine: EngineDep, language: str, vuln_id: str) -> JvnText | None:
    """JVN's Japanese text of the vulnerability, for a Japanese reader only: the English
    text stays for everyone else (``knowledge.jvn_text``)."""
    if language != "ja":
        return None
    with engine.connect() as conn:
        return jvn_text(conn, vuln_id)


@router.get("/findings/{finding_id}")
@scope_aware  # a finding outside the user's assets is the 404 page
def finding_page(request: Request, finding_id: DbId, user: User, engine: EngineDep,
                 error: Search | None = None) -> HTMLResponse:
    """One finding: the eight report fields (JVN's Japanese title, overview and solution
    for a Japanese reader where JVN describes the vulnerability), the priority reason,
    the evidence, the tickets playbooks opened, triage."""
    row, data, _ = _finding(engine, finding_id, user.principal)
    return render(request, "finding.html", user.language,
                  {"row": row, "d": data, "error": error, "decisions": DECISIONS,
                   "field_sources": fields_by_source(data),
                   "jvn": _jvn(engine, user.language, row.vuln_id),
                   "tickets": _tickets(engine, finding_id)}, user)


@router.post("/findings/{finding_id}/triage")
@scope_aware  # on the user's assets only, one asset at a time (check_reach)
def triage_finding(request: Request, finding_id: DbId, user: User, engine: EngineDep,
                   decision: Annotated[str, Form()] = "",
                   reason: Annotated[Text, Form()] = "",
                   scope: Annotated[str, Form()] = "asset",
                   expires: Annotated[str, Form()] = "",
                   csrf: Annotated[str, Form()] = "") -> Response:
    """Record a triage decision for this finding's vulnerability (analysts).  Every form
    field has a default, so the role is checked before the form: a viewer is refused
    (403) whatever they sent, and a missing decision is the form's own "choose" error."""
    check_csrf(request, csrf)
    need(user, Role.ANALYST)
    row, _, seen = _finding(engine, finding_id, user.principal)
    tr = i18n.translations(user.language)
    problem = None
    expires_at: datetime | None = None
    if scope not in ("asset", "global"):  # the page offers these two
        problem = tr.gettext("Choose a decision.")
    elif expires:
        try:
            # The end of the chosen day, UTC: "until 30 June" includes 30 June.
            expires_at = datetime.combine(datetime.strptime(expires, "%Y-%m-%d").date(),
                                          time(23, 59, 59), UTC)
        except ValueError:
            problem = tr.gettext("The expiry must be a date.")
    if problem is None:
        # The stage's rules (the API checks the same), said in the user's language.
        try:
            check_decision(decision=decision, scope=scope, reason=reason.strip(),
                           expires_at=expires_at, asset_id=row.asset_id)
            check_reach(scope=scope, asset_id=row.asset_id, reach=seen)
        except TriageError as exc:
            problem = {
                "reason": tr.gettext("Give a reason (at least 3 characters)."),
                "expiry_needed": tr.gettext("An accepted risk needs an expiry date."),
                "expiry_past": tr.gettext("The expiry date is in the past."),
            }.get(exc.code) or tr.gettext("Choose a decision.")
    if problem is not None:
        _, data, _ = _finding(engine, finding_id, user.principal)
        return render(request, "finding.html", user.language,
                      {"row": row, "d": data, "error": problem, "decisions": DECISIONS,
                       "tickets": _tickets(engine, finding_id)},
                      user, status_code=422)
    with engine.begin() as conn:
        record_decision(conn, user.principal.name, vuln_id=row.vuln_id, package=row.package,
                        scope=scope, decision=decision, reason=reason.strip(),
                        asset_id=row.asset_id, expires_at=expires_at, reach=seen)
    return RedirectResponse(f"/findings/{finding_id}", status.HTTP_303_SEE_OTHER)
