"""A MyJVN alert (注意警戒情報) loaded by a feed update is a ``jvn_alert`` event a playbook
can act on, on both databases: the real getAlertList example, a condition on the alert's
CPEs that fires for the WordPress alert only."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
from sqlalchemy import Engine, select

from patchpilot.automation.evaluate import evaluate_events
from patchpilot.db.tables import finding_events, outbox
from patchpilot.knowledge.update import update_from

Build = Callable[..., Engine]
PLAYBOOK = """\
name: jvn-wordpress
trigger: {events: [jvn_alert]}
condition: '"cpe:/a:wordpress:wordpress" in event.detail.cpes'
actions:
  - type: webhook
    with: {url: "http://127.0.0.1:9/jvn", secret_env: PP_JVN_HOOK_KEY}
"""


def test_a_playbook_condition_on_a_jvn_alert_fires(estate_with: Build, shared_data: Path,
                                                   tmp_path: Path) -> None:
    estate = estate_with(PLAYBOOK)
    feeds = tmp_path / "feeds" / "jvn"
    feeds.mkdir(parents=True)
    shutil.copy(shared_data / "jvn" / "hnd" / "getAlertList_hnd.xml", feeds)
    assert [r.status for r in update_from(estate, [feeds.parent])] == ["loaded"]
    with estate.connect() as conn:
        events = conn.execute(select(finding_events.c.id, finding_events.c.detail).where(
            finding_events.c.kind == "jvn_alert").order_by(finding_events.c.id)).all()
    assert [orjson.loads(d)["id"] for _, d in events] == ["MYJVN-ALT-2025-0000",
                                                         "MYJVN-ALT-2025-0011"]
    # Only the WordPress alert names cpe:/a:wordpress:wordpress.
    assert evaluate_events(estate).queued == 1
    with estate.connect() as conn:
        row = conn.execute(select(outbox.c.event_id, outbox.c.subject, outbox.c.action_type,
                                  outbox.c.payload)).one()
    assert tuple(row)[:3] == (events[1][0], f"event:{events[1][0]}", "webhook")
    # The action sees the alert's title and link in its context.
    assert orjson.loads(row.payload)["event"]["detail"]["title"] == (
        "WordPress に関するソフトウェア更新情報 (2025年2月12日 公開)")
