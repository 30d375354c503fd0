"""``gitlab``: a GitLab issue per finding (or plan item), through the REST API v4.

``with``: ``url`` (the GitLab site, ``https://gitlab.example.com``), ``project`` (its
numeric id or its path, ``group/project``), ``token_secret`` (the stored secret holding a
personal, group or project access token with the ``api`` scope, sent as
``PRIVATE-TOKEN``), ``labels`` (more labels), and the settings every ticket action has
(:mod:`patchpilot.automation.tickets`).

The issue carries the labels ``patchpilot`` and ``patchpilot-finding-<id>``; the
project's issues with that label (any state) are listed before one is created.  Closing
and reopening are ``state_event: close`` / ``reopen``.

API: https://docs.gitlab.com/ee/api/issues.html, https://docs.gitlab.com/ee/api/notes.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from patchpilot.automation.actions import Problem
from patchpilot.automation.tickets import RemoteTicket, Session, TicketAction, call


def message_of(body: Any) -> str:
    """GitLab's error text: ``message`` (text, or a map of field to messages) or
    ``error``."""
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, dict):
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in message.items())
    if isinstance(message, list):
        return "; ".join(map(str, message))
    return str(message or body.get("error_description") or body.get("error") or "")


class GitLab:
    """GitLab's REST API v4 for issues."""

    system = "gitlab"
    settings: tuple[str, ...] = ("labels",)

    def check(self, with_: Mapping[str, Any]) -> Problem:
        """``labels`` a list of text without commas (GitLab separates them by commas)."""
        labels = with_.get("labels", [])
        if not isinstance(labels, list) or not all(
                isinstance(x, str) and x and "," not in x for x in labels):
            return "labels", "must be a list of labels (without commas)"
        return None

    def _base(self, s: Session) -> str:
        return f"/api/v4/projects/{quote(s.project, safe='')}/issues"

    def _headers(self, s: Session) -> dict[str, str]:
        return {"PRIVATE-TOKEN": s.token, "Accept": "application/json"}

    def _remote(self, issue: Mapping[str, Any]) -> RemoteTicket:
        return RemoteTicket(f"#{issue['iid']}", str(issue["web_url"]),
                            issue.get("state") == "closed")

    def find(self, s: Session, marker: str) -> RemoteTicket | None:
        """The project's issue labelled with the marker (open or closed)."""
        found = call(s, self.system, "GET", self._base(s), message_of,
                     headers=self._headers(s),
                     params={"labels": marker, "scope": "all", "per_page": 5})
        return self._remote(found[0]) if found else None

    def create(self, s: Session, summary: str, description: str, marker: str
               ) -> RemoteTicket:
        """POST the issue with the marker among its labels."""
        labels = ",".join(["patchpilot", marker, *s.with_.get("labels", [])])
        return self._remote(call(s, self.system, "POST", self._base(s), message_of,
                                 headers=self._headers(s),
                                 json={"title": summary, "description": description,
                                       "labels": labels}))

    def comment(self, s: Session, key: str, text: str) -> None:
        """POST a note."""
        call(s, self.system, "POST", f"{self._base(s)}/{key.lstrip('#')}/notes",
             message_of, headers=self._headers(s), json={"body": text})

    def set_closed(self, s: Session, key: str, closed: bool, text: str) -> None:
        """Note, then PUT the state event."""
        self.comment(s, key, text)
        call(s, self.system, "PUT", f"{self._base(s)}/{key.lstrip('#')}", message_of,
             headers=self._headers(s),
             json={"state_event": "close" if closed else "reopen"})

    def fetch(self, s: Session, key: str) -> RemoteTicket:
        """GET the issue."""
        return self._remote(call(s, self.system, "GET", f"{self._base(s)}/{key.lstrip('#')}",
                                 message_of, headers=self._headers(s)))


ACTION = TicketAction(GitLab())
