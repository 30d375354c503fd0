"""``jira``: a Jira issue per finding (or plan item), through the REST API v2 or v3.

``with``: ``url`` (the site, ``https://jira.example.com``), ``project`` (its key),
``token_secret`` (the stored secret holding the API token: a personal access token sent
as ``Bearer``, or with ``user`` -- the account's e-mail on Jira Cloud -- an API token sent
with basic auth), ``api`` (2, the default, or 3: Jira Cloud's v3 takes descriptions and
comments in the Atlassian Document Format), ``issue_type`` (default ``Bug``), ``labels``
(more labels), and the settings every ticket action has (``per``, ``lang``, ``summary``,
``description``, ``comment``: :mod:`patchpilot.automation.tickets`).

The issue carries the labels ``patchpilot`` and ``patchpilot-finding-<id>``; the latter is
searched for with JQL before an issue is created.  Closing takes the issue's transition
named Done, Closed or Resolved (case-insensitive); reopening one named Reopen, Reopened,
Reopen Issue, To Do or Open.

API: https://developer.atlassian.com/cloud/jira/platform/rest/v3/ (v3, and ``search/jql``
instead of the retired ``search``), https://docs.atlassian.com/software/jira/docs/api/REST/
(Data Center, v2).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from patchpilot.automation.actions import DeliveryError, Problem
from patchpilot.automation.tickets import RemoteTicket, Session, TicketAction, call

CLOSING = ("done", "closed", "resolved")
REOPENING = ("reopen", "reopened", "reopen issue", "to do", "open")


def message_of(body: Any) -> str:
    """Jira's error text: ``errorMessages`` and the per-field ``errors``."""
    parts = [str(m) for m in body.get("errorMessages") or []]
    parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
    return "; ".join(parts)


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document: a paragraph per line (an
    empty text node is invalid ADF, so blank lines are dropped)."""
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in text.splitlines() if line.strip()]}


def _jql_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Jira:
    """Jira's REST API (v2 or v3)."""

    system = "jira"
    settings: tuple[str, ...] = ("user", "api", "issue_type", "labels")

    def check(self, with_: Mapping[str, Any]) -> Problem:
        """``api`` 2 or 3; ``user`` an e-mail; ``issue_type`` text; ``labels`` a list of
        words (Jira labels have no spaces)."""
        if with_.get("api", 2) not in (2, 3, "2", "3"):
            return "api", "must be 2 or 3 (the REST API version)"
        if "user" in with_ and (not isinstance(with_["user"], str) or not with_["user"]):
            return "user", "must be the account (e-mail) the API token belongs to"
        if not isinstance(with_.get("issue_type", "Bug"), str) or not with_.get(
                "issue_type", "Bug"):
            return "issue_type", "must be the name of an issue type (e.g. Bug, Task)"
        labels = with_.get("labels", [])
        if not isinstance(labels, list) or not all(
                isinstance(x, str) and x and " " not in x for x in labels):
            return "labels", "must be a list of labels without spaces"
        return None

    def _v(self, s: Session) -> str:
        return f"/rest/api/{int(s.with_.get('api', 2))}"

    def _headers(self, s: Session) -> dict[str, str]:
        user = s.with_.get("user")
        if user:
            auth = "Basic " + base64.b64encode(f"{user}:{s.token}".encode()).decode()
        else:
            auth = f"Bearer {s.token}"
        return {"Authorization": auth, "Accept": "application/json"}

    def _text(self, s: Session, text: str) -> Any:
        return adf(text) if int(s.with_.get("api", 2)) == 3 else text

    def _remote(self, s: Session, issue: Mapping[str, Any]) -> RemoteTicket:
        category = (((issue.get("fields") or {}).get("status") or {})
                    .get("statusCategory") or {}).get("key")
        return RemoteTicket(str(issue["key"]), f"{s.url}/browse/{issue['key']}",
                            category == "done")

    def find(self, s: Session, marker: str) -> RemoteTicket | None:
        """Search with JQL for the marker label (v3: ``search/jql``)."""
        path = "/search/jql" if int(s.with_.get("api", 2)) == 3 else "/search"
        jql = f"project = {_jql_text(s.project)} AND labels = {_jql_text(marker)}"
        found = call(s, self.system, "GET", self._v(s) + path, message_of,
                     headers=self._headers(s),
                     params={"jql": jql, "fields": "status", "maxResults": 1})
        issues = found.get("issues") or []
        return self._remote(s, issues[0]) if issues else None

    def create(self, s: Session, summary: str, description: str, marker: str
               ) -> RemoteTicket:
        """POST an issue with the marker among its labels."""
        labels = ["patchpilot", marker, *s.with_.get("labels", [])]
        fields = {"project": {"key": s.project}, "summary": summary[:255],
                  "description": self._text(s, description),
                  "issuetype": {"name": s.with_.get("issue_type", "Bug")},
                  "labels": labels}
        made = call(s, self.system, "POST", self._v(s) + "/issue", message_of,
                    headers=self._headers(s), json={"fields": fields})
        return RemoteTicket(str(made["key"]), f"{s.url}/browse/{made['key']}", False)

    def comment(self, s: Session, key: str, text: str) -> None:
        """POST a comment."""
        call(s, self.system, "POST", f"{self._v(s)}/issue/{quote(key)}/comment", message_of,
             headers=self._headers(s), json={"body": self._text(s, text)})

    def set_closed(self, s: Session, key: str, closed: bool, text: str) -> None:
        """Comment, then take the transition whose name closes (or reopens) the issue;
        an issue already so is left as it is."""
        self.comment(s, key, text)
        path = f"{self._v(s)}/issue/{quote(key)}/transitions"
        offered = call(s, self.system, "GET", path, message_of,
                       headers=self._headers(s)).get("transitions") or []
        names = CLOSING if closed else REOPENING
        chosen = next((t for t in offered if str(t.get("name", "")).lower() in names), None)
        if chosen is None:
            if self.fetch(s, key).closed == closed:
                return  # already where it should be (a retry after a crash)
            raise DeliveryError(
                f"jira: {s.host}: issue {key} offers no transition named "
                f"{' / '.join(n.title() for n in names)} (it offers: "
                f"{', '.join(str(t.get('name')) for t in offered) or 'none'})")
        call(s, self.system, "POST", path, message_of, headers=self._headers(s),
             json={"transition": {"id": str(chosen["id"])}})

    def fetch(self, s: Session, key: str) -> RemoteTicket:
        """GET the issue's status (closed: its status category is done)."""
        issue = call(s, self.system, "GET", f"{self._v(s)}/issue/{quote(key)}", message_of,
                     headers=self._headers(s), params={"fields": "status"})
        return self._remote(s, issue)


ACTION = TicketAction(Jira())
