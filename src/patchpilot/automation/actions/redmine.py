"""``redmine``: a Redmine issue per finding (or plan item), through its REST API.

``with``: ``url`` (the Redmine site), ``project`` (the project's identifier or id),
``token_secret`` (the stored secret holding the user's API key, sent as
``X-Redmine-API-Key``), ``closed_status_id`` (the status a fixed finding's issue is set to,
default 5, "Closed" in the default statuses), ``open_status_id`` (the status a reopened
issue gets, default 1, "New"), ``tracker_id`` (optional: the project's default tracker
otherwise), and the settings every ticket action has
(:mod:`patchpilot.automation.tickets`).

Redmine issues have no labels: the marker ``[patchpilot-finding-<id>]`` ends the subject,
and an issue whose subject contains it is searched for (``subject=~…``, every status)
before one is created.

API: https://www.redmine.org/projects/redmine/wiki/Rest_Issues
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchpilot.automation.actions import Problem
from patchpilot.automation.tickets import RemoteTicket, Session, TicketAction, call

SUBJECT_MAX = 255


def message_of(body: Any) -> str:
    """Redmine's error text: the ``errors`` list of a 422."""
    return "; ".join(str(e) for e in body.get("errors") or [])


def _id(key: str) -> str:
    return key.lstrip("#")


class Redmine:
    """Redmine's REST API (JSON)."""

    system = "redmine"
    settings: tuple[str, ...] = ("closed_status_id", "open_status_id", "tracker_id")

    def check(self, with_: Mapping[str, Any]) -> Problem:
        """The status and tracker ids are positive whole numbers."""
        for key in self.settings:
            value = with_.get(key, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                return key, "must be a Redmine id (a whole number above 0)"
        return None

    def _headers(self, s: Session) -> dict[str, str]:
        return {"X-Redmine-API-Key": s.token, "Accept": "application/json"}

    def _remote(self, s: Session, issue: Mapping[str, Any]) -> RemoteTicket:
        status = issue.get("status") or {}
        if "is_closed" in status:  # Redmine 5.1 and later say so
            closed = bool(status["is_closed"])
        else:
            closed = status.get("id") == int(s.with_.get("closed_status_id", 5))
        return RemoteTicket(f"#{issue['id']}", f"{s.url}/issues/{issue['id']}", closed)

    def find(self, s: Session, marker: str) -> RemoteTicket | None:
        """The project's issue (any status) whose subject holds the marker."""
        found = call(s, self.system, "GET", "/issues.json", message_of,
                     headers=self._headers(s),
                     params={"project_id": s.project, "subject": f"~[{marker}]",
                             "status_id": "*", "limit": 25})
        for issue in found.get("issues") or []:
            if f"[{marker}]" in str(issue.get("subject", "")):
                return self._remote(s, issue)
        return None

    def create(self, s: Session, summary: str, description: str, marker: str
               ) -> RemoteTicket:
        """POST the issue, its subject ending with the marker."""
        tail = f" [{marker}]"
        issue: dict[str, Any] = {"project_id": s.project,
                                 "subject": summary[:SUBJECT_MAX - len(tail)] + tail,
                                 "description": description}
        if "tracker_id" in s.with_:
            issue["tracker_id"] = int(s.with_["tracker_id"])
        made = call(s, self.system, "POST", "/issues.json", message_of,
                    headers=self._headers(s), json={"issue": issue})
        return RemoteTicket(f"#{made['issue']['id']}",
                            f"{s.url}/issues/{made['issue']['id']}", False)

    def comment(self, s: Session, key: str, text: str) -> None:
        """PUT a note on the issue."""
        call(s, self.system, "PUT", f"/issues/{_id(key)}.json", message_of,
             headers=self._headers(s), json={"issue": {"notes": text}})

    def set_closed(self, s: Session, key: str, closed: bool, text: str) -> None:
        """PUT the closed (or open) status with a note."""
        status = int(s.with_.get("closed_status_id", 5) if closed
                     else s.with_.get("open_status_id", 1))
        call(s, self.system, "PUT", f"/issues/{_id(key)}.json", message_of,
             headers=self._headers(s), json={"issue": {"notes": text, "status_id": status}})

    def fetch(self, s: Session, key: str) -> RemoteTicket:
        """GET the issue."""
        found = call(s, self.system, "GET", f"/issues/{_id(key)}.json", message_of,
                     headers=self._headers(s))
        return self._remote(s, found["issue"])


ACTION = TicketAction(Redmine())
