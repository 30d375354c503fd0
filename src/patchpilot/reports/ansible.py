"""A patch plan as an Ansible playbook and its inventory.

One play per plan item that still has pending hosts, run against an inventory group of
those hosts (``pp_item_<rank>``), with the module of the item's package manager:
``ansible.builtin.apt`` (only_upgrade), ``ansible.builtin.dnf`` (update_only; dnf also
serves yum hosts on EL 8+), ``community.general.apk``, ``ansible.builtin.pip`` and
``community.general.npm``.  Items needing a reboot end with ``ansible.builtin.reboot``.
Ecosystems without an Ansible module (Maven, Go, …) get a ``debug`` task with the command
to run by hand, so that no item silently drops out of the playbook.  A language package
found in named places (pip in several Pythons, a library in several projects) is upgraded
per installation: each host's commands, each naming its interpreter or project folder,
are a host variable (``pp_item_<rank>_commands``) that a ``shell`` task loops over.
``serial`` keeps a failed upgrade from taking every host of an item down at once.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import yaml

from patchpilot.scans.plan import PatchPlan, PlanHost, PlanItem

# How many hosts of an item are patched at once.
SERIAL = "25%"


def group_name(rank: int) -> str:
    """The inventory group of the plan item ranked ``rank``."""
    return f"pp_item_{rank}"


def _host(name: str) -> str:
    # Ansible inventory names must not contain spaces; the asset name is a hostname.
    return re.sub(r"\s+", "_", name)


def commands_var(rank: int) -> str:
    """The host variable listing, for the item ranked ``rank``, the commands that upgrade
    each of the host's installations in its own environment."""
    return f"{group_name(rank)}_commands"


def _tasks(item: PlanItem, rank: int) -> list[dict[str, Any]]:
    names = sorted({b for h in item.pending for b in h.binaries})
    title = f"{item.package} → {item.fixed_version} ({len(item.vulns)} vulnerabilities)"
    task: dict[str, Any]
    if item.located and item.manager not in ("apt", "dnf", "zypper", "apk"):
        task = {"ansible.builtin.shell": "{{ item }}",
                "loop": "{{ " + commands_var(rank) + " | default([]) }}"}
    elif item.manager == "apt":
        task = {"ansible.builtin.apt": {"name": names, "state": "latest",
                                        "only_upgrade": True, "update_cache": True}}
    elif item.manager == "dnf":
        task = {"ansible.builtin.dnf": {"name": names, "state": "latest",
                                        "update_only": True}}
    elif item.manager == "apk":
        task = {"community.general.apk": {"name": names, "state": "latest",
                                          "update_cache": True}}
    elif item.manager == "pip":
        task = {"ansible.builtin.pip": {"name": [f"{n}>={item.fixed_version}"
                                                 for n in names], "state": "present"}}
    elif item.manager == "npm":
        task = {"community.general.npm": {"name": names[0], "version": item.fixed_version,
                                          "state": "present"}}
    else:
        task = {"ansible.builtin.debug": {"msg": f"by hand: {item.command or title}"}}
    tasks = [{"name": f"Upgrade {title}", **task}]
    if item.reboot:
        tasks.append({"name": "Reboot to load the upgraded package",
                      "ansible.builtin.reboot": {"reboot_timeout": 900}})
    return tasks


def playbook(plan: PatchPlan) -> list[dict[str, Any]]:
    """The playbook as data: one play per item with pending hosts, in plan order."""
    plays = []
    for rank, item in enumerate(plan.items, 1):
        if not item.pending:
            continue
        plays.append({"name": f"{rank}. {item.summary}", "hosts": group_name(rank),
                      "become": True, "serial": SERIAL, "tasks": _tasks(item, rank)})
    return plays


def inventory(plan: PatchPlan) -> dict[str, Any]:
    """The YAML inventory: one group per item, listing its pending hosts."""
    children: dict[str, Any] = {}
    for rank, item in enumerate(plan.items, 1):
        if item.pending:
            children[group_name(rank)] = {"hosts": {
                _host(h.name): _host_vars(item, rank, h) for h in item.pending}}
    return {"all": {"children": children}}


def _host_vars(item: PlanItem, rank: int, host: PlanHost) -> dict[str, Any] | None:
    if not item.located:
        return None
    return {commands_var(rank): [i.command for i in host.installations if i.command]}


def inventory_ini(plan: PatchPlan) -> str:
    """The same inventory in INI form."""
    lines: list[str] = []
    for rank, item in enumerate(plan.items, 1):
        if item.pending:
            lines.append(f"[{group_name(rank)}]")
            for h in item.pending:
                host_vars = _host_vars(item, rank, h)
                # INI host variables are literals: the list as JSON, single-quoted.
                lines.append(_host(h.name) if host_vars is None else
                             f"{_host(h.name)} {commands_var(rank)}='"
                             f"{json.dumps(host_vars[commands_var(rank)])}'")
            lines.append("")
    return "\n".join(lines)


def export(plan: PatchPlan) -> dict[str, str]:
    """File name → text: ``playbook.yml``, ``inventory.yml`` and ``inventory.ini``."""
    header = ("# Generated by PatchPilot from the patch plan of "
              f"{plan.generated_at.isoformat()}; run: ansible-playbook -i inventory.yml "
              "playbook.yml\n")
    return {
        "playbook.yml": header + yaml.safe_dump(playbook(plan), sort_keys=False,
                                                allow_unicode=True),
        "inventory.yml": yaml.safe_dump(inventory(plan), sort_keys=False, allow_unicode=True),
        "inventory.ini": inventory_ini(plan),
    }


def zip_archive(plan: PatchPlan) -> bytes:
    """The files of :func:`export` in one zip (what the API and the plan page download)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in export(plan).items():
            archive.writestr(name, text)
    return buffer.getvalue()
