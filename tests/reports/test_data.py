"""The executive report's top patch actions on the real estate of
tests/reports/conftest.py: read from the stored plan (what /plan shows) once the workers
have built it, the same actions as built from the findings before."""

from __future__ import annotations

from sqlalchemy import Engine

from patchpilot.assets.groups import Scope
from patchpilot.reports.data import PatchAction, executive_data
from patchpilot.scans import plan_store

KERNEL = PatchAction(package="kernel", fixed_version="4.18.0-372.9.1.el8",
                     ecosystem="AlmaLinux:8", vulns=40, hosts=2, p1_hosts=1,
                     known_exploited=0, command="dnf upgrade kernel", reboot=True)


def test_top_actions_from_the_stored_plan_are_the_built_ones(estate: dict[str, int],
                                                             engine: Engine) -> None:
    scopes = (Scope(), Scope(group="plant1"), Scope(service="lab"))
    with engine.connect() as conn:
        assert plan_store.status(conn).generation == 0
        built = [executive_data(conn, scope).actions for scope in scopes]
    assert plan_store.rebuild(engine).generation > 0
    with engine.connect() as conn:
        stored = [executive_data(conn, scope).actions for scope in scopes]
    assert stored == built
    estate_actions, plant1, lab = built
    assert estate_actions[0] == KERNEL and plant1[0] == KERNEL
    # The workstation patched by a later scan counts nowhere: firefox on three hosts.
    assert [(a.package, a.vulns, a.hosts, a.p1_hosts, a.known_exploited)
            for a in estate_actions] == [("kernel", 40, 2, 1, 0), ("firefox", 10, 3, 2, 6),
                                         ("pygments", 1, 1, 1, 0)]
    assert [(a.package, a.vulns, a.hosts, a.p1_hosts, a.known_exploited)
            for a in lab] == [("firefox", 10, 1, 0, 2)]
