"""The patch plan on real advisories: grouping, order, commands, windows, Ansible, verify."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import yaml
from sqlalchemy import Engine, select

from patchpilot.db.tables import finding_priority, findings
from patchpilot.reports import ansible
from patchpilot.scans.plan import build_plan, needs_reboot, plan_csv
from patchpilot.scoring.reasons import reason_text
from tests.builders.plan_estate import (
    NEW_FIREFOX,
    OLD_KERNEL,
    OLD_PYGMENTS,
    scan,
)

FIREFOX_CVES = ["CVE-2022-25235", "CVE-2022-25236", "CVE-2022-25315", "CVE-2022-26381",
                "CVE-2022-26383", "CVE-2022-26384", "CVE-2022-26385", "CVE-2022-26386",
                "CVE-2022-26387", "CVE-2022-26485", "CVE-2022-26486"]


def test_same_cve_p1_on_the_dmz_server_and_p4_on_the_dev_box(estate: dict[str, int],
                                                            kb: Engine) -> None:
    # CVE-2022-25315 (expat in firefox): Critical, not known exploited.
    with kb.connect() as conn:
        rows = {r.asset_id: (r.priority, reason_text(r.reason)) for r in conn.execute(
            select(findings.c.asset_id, finding_priority.c.priority, finding_priority.c.reason)
            .join(finding_priority, finding_priority.c.finding_id == findings.c.id)
            .where(findings.c.vuln_id == "CVE-2022-25315"))}
    severity = rows[estate["plant1-web-01"]][1].split(" × ")[0].removeprefix("P1: ")
    assert rows[estate["plant1-web-01"]] == (1, f"P1: {severity} × tier 1; internet-facing")
    assert rows[estate["plant2-dev-07"]][0] == 4
    assert rows[estate["plant2-dev-07"]][1].endswith("× tier 4; development")
    # Known exploited (KEV) firefox CVEs: P1 on tier 1-2, at least P2 on the dev box.
    with kb.connect() as conn:
        kev = {r.asset_id: (r.priority, reason_text(r.reason)) for r in conn.execute(
            select(findings.c.asset_id, finding_priority.c.priority, finding_priority.c.reason)
            .join(finding_priority, finding_priority.c.finding_id == findings.c.id)
            .where(findings.c.vuln_id == "CVE-2022-26485"))}
    assert kev[estate["plant1-web-02"]][0] == 1
    assert kev[estate["plant2-dev-07"]][0] == 2
    assert "; known exploited" in kev[estate["plant2-dev-07"]][1]


def test_plan_groups_by_fix(estate: dict[str, int], kb: Engine) -> None:
    with kb.connect() as conn:
        plan = build_plan(conn)
    by_package = {(i.package, i.fixed_version): i for i in plan.items}
    firefox = by_package[("firefox", "91.7.0-3.el8_5.alma")]
    # ALSA-2022:0818: one change fixes its CVEs on the three hosts still on 91.6.
    assert firefox.vulns == sorted(set(firefox.vulns))
    assert set(firefox.vulns) <= set(FIREFOX_CVES) and len(firefox.vulns) >= 10
    assert [h.name for h in firefox.pending] == ["plant1-web-01", "plant1-web-02",
                                                 "plant2-dev-07"]
    assert firefox.command == "dnf upgrade firefox"
    assert firefox.manager == "dnf" and not firefox.reboot
    assert firefox.known_exploited == 6  # CVE-2022-26485 and -26486 on 3 hosts
    assert firefox.summary.startswith(f"firefox → 91.7.0-3.el8_5.alma fixes "
                                      f"{len(firefox.vulns)} CVEs on 3 hosts, 2 of them P1")
    kernel = next(i for i in plan.items if i.package == "kernel")
    assert kernel.reboot and kernel.fixed_version == "4.18.0-372.9.1.el8"
    assert [h.name for h in kernel.hosts] == ["plant1-web-01", "plant1-web-02"]
    # Risk removed decides the order: the kernel's 40 CVEs on two servers outweigh
    # firefox's KEV entries; pygments' one CVE comes after both.
    assert plan.items[0] is kernel and plan.items[1] is firefox
    assert [i.risk for i in plan.items] == sorted((i.risk for i in plan.items), reverse=True)
    # Hosts of plant1 show its next Saturday 01:00 Tokyo window (Friday 16:00 UTC) -- or,
    # while that four-hour window is open, its start.
    window = datetime.fromisoformat(firefox.hosts[0].next_window or "")
    assert (window.weekday(), window.hour, window.minute) == (4, 16, 0)
    assert window > datetime.now(UTC) - timedelta(hours=4)
    assert firefox.hosts[2].next_window is None  # the dev box has no group: any time
    # No fix: ajenti-panel is listed apart.
    assert [(u.package, u.hosts) for u in plan.unfixed] == [("ajenti-panel",
                                                             ("plant2-dev-07",))]
    assert plan.unfixed[0].vulns == ("CVE-2018-1000080",)


def test_plan_of_one_group_and_csv(estate: dict[str, int], kb: Engine) -> None:
    with kb.connect() as conn:
        plan = build_plan(conn, group="plant1")
    assert {h.name for i in plan.items for h in i.hosts} == {"plant1-web-01",
                                                             "plant1-web-02"}
    rows = list(csv.DictReader(io.StringIO(plan_csv(plan))))
    assert len(rows) == sum(len(i.hosts) for i in plan.items)
    kernel = [r for r in rows if r["package"] == "kernel"]
    assert {r["reboot"] for r in kernel} == {"yes"}
    assert kernel[0]["command"] == "dnf upgrade kernel"
    assert kernel[0]["groups"] == "plant1"


def test_ansible_export_parses_back(estate: dict[str, int], kb: Engine) -> None:
    with kb.connect() as conn:
        plan = build_plan(conn)
    files = ansible.export(plan)
    plays = yaml.safe_load(files["playbook.yml"])
    inventory = yaml.safe_load(files["inventory.yml"])
    assert len(plays) == len([i for i in plan.items if i.pending])
    second = plays[1]
    assert second["hosts"] == "pp_item_2" and second["become"] is True
    assert second["tasks"][0]["ansible.builtin.dnf"] == {
        "name": ["firefox"], "state": "latest", "update_only": True}
    groups = inventory["all"]["children"]
    assert set(groups["pp_item_2"]["hosts"]) == {"plant1-web-01", "plant1-web-02",
                                                 "plant2-dev-07"}
    kernel_rank = next(n for n, i in enumerate(plan.items, 1) if i.package == "kernel")
    kernel_play = next(p for p in plays if p["hosts"] == f"pp_item_{kernel_rank}")
    assert kernel_play["tasks"][-1] == {"name": "Reboot to load the upgraded package",
                                        "ansible.builtin.reboot": {"reboot_timeout": 900}}
    pip_play = next(p for p in plays if "pygments" in p["name"])
    assert pip_play["tasks"][0]["ansible.builtin.pip"]["name"] == ["Pygments>=2.15.1"]
    assert "[pp_item_2]\nplant1-web-01\nplant1-web-02\nplant2-dev-07\n" in files[
        "inventory.ini"]


def test_next_scan_verifies_hosts(estate: dict[str, int], kb: Engine) -> None:
    scan(kb, "plant1-web-01", NEW_FIREFOX, OLD_KERNEL, OLD_PYGMENTS)
    with kb.connect() as conn:
        plan = build_plan(conn)
    firefox = next(i for i in plan.items if i.package == "firefox")
    assert [(h.name, h.status) for h in firefox.hosts] == [
        ("plant1-web-01", "verified"), ("plant1-web-02", "pending"),
        ("plant2-dev-07", "pending")]
    assert firefox.summary.endswith("(1 verified fixed)")
    with kb.connect() as conn:
        assert not any(h.name == "plant1-web-01" for i in build_plan(conn, verify=False).items
                       if i.package == "firefox" for h in i.hosts)


def test_reboot_rules() -> None:
    assert needs_reboot(["linux-image-6.1.0-18-amd64"]) and needs_reboot(["libc6"])
    assert needs_reboot(["kernel-core"]) and needs_reboot(["systemd"])
    assert not needs_reboot(["firefox", "openssl", "linuxdoc-tools"])
