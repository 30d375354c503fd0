"""``tag``: add tags to the event's finding.

``with``: ``tags`` (a list of templates: ``["ids-alert", "{{ asset.environment }}"]``).
They are added to ``finding_overrides.tags`` -- a JSON list kept sorted and unique, so a
tag given twice is there once and a repeated delivery changes nothing.  A tag that
renders empty is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchpilot.automation.actions import Delivery, DeliveryError, Outcome, Problem
from patchpilot.automation.actions._estate import (
    actor_of,
    compiles,
    render,
    subject_id,
    target_of,
    unknown_keys,
)
from patchpilot.errors import InvalidInput, NotFound
from patchpilot.findings.overrides import MAX_TAG, add_tags

NAME = "tag"


class TagAction:
    """Add tags to the finding."""

    name = NAME

    def validate(self, with_: Mapping[str, Any]) -> Problem:
        """``tags`` a non-empty list of templates."""
        problem = unknown_keys(with_, ("tags",))
        if problem:
            return problem
        tags = with_.get("tags")
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not tags:
            return "tags", "required: a list of tags (each may be a template)"
        for tag in tags:
            problem = compiles("tags", tag)
            if problem:
                return problem
            if len(tag) > MAX_TAG:
                return "tags", f"{tag[:20]!r}…: at most {MAX_TAG} characters"
        return None

    def target(self, with_: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        """``patchpilot:tag``."""
        return target_of(NAME)

    def deliver(self, with_: Mapping[str, Any], payload: Mapping[str, Any],
                delivery: Delivery) -> Outcome | None:
        """Render the tags and add them."""
        finding_id = subject_id(payload, "finding")
        if finding_id is None:
            return Outcome({"skipped": "the event names no finding"})
        given = with_["tags"] if isinstance(with_["tags"], list) else [with_["tags"]]
        tags = [t for t in (render(NAME, "tags", str(g), payload) for g in given) if t]
        if not tags:
            return Outcome({"finding_id": finding_id, "skipped": "every tag rendered empty"})
        with delivery.engine.begin() as conn:
            try:
                now = add_tags(conn, actor_of(delivery), finding_id, tags, now=delivery.now)
            except NotFound:
                return Outcome({"skipped": f"finding {finding_id} no longer exists"})
            except InvalidInput as exc:  # what the template gave (too long)
                raise DeliveryError(f"{NAME}: {exc}") from exc
        return Outcome({"finding_id": finding_id, "tags": now})


ACTION = TagAction()
