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

Windows items (KBs, ``manager == windows-update``) make one play at the end, against the
group ``pp_windows`` of every Windows host with a pending KB: ``ansible.windows.win_updates``
limited to the plan's KBs (``accept_list``) among security updates, rebooting when one of
them needs a restart -- one run and at most one restart per host, however many KBs it
needs.  A KB that does not apply to a host (SQL Server's on a host without it) is simply
not offered to it by Windows Update.  The hosts need a Windows connection in the inventory
(``ansible_connection: winrm``, or ``ssh`` with ``ansible_shell_type: powershell``).
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, TextIO

import yaml

from patchpilot.scans.plan import WINDOWS_UPDATE, PatchPlan, PlanHost, PlanItem

# How many hosts of an item are patched at once.
SERIAL = "25%"
# The inventory group of the Windows hosts with KBs to install.
WINDOWS_GROUP = "pp_windows"


@dataclass(slots=True)
class _WindowsWork:
    """The Windows items' KBs (plan order), their hosts, and whether one restarts."""

    kbs: list[str] = field(default_factory=list)
    hosts: dict[str, None] = field(default_factory=dict)  # ordered set
    reboot: bool = False

    def add(self, item: PlanItem) -> None:
        self.kbs.append(item.fixed_version)
        self.hosts.update(dict.fromkeys(_host(h.name) for h in item.pending))
        self.reboot = self.reboot or item.reboot


def windows_play(kbs: list[str], reboot: bool, n_hosts: int) -> dict[str, Any]:
    """The play installing ``kbs`` on the group :data:`WINDOWS_GROUP`."""
    return {"name": f"Windows: {len(kbs)} {'KB' if len(kbs) == 1 else 'KBs'} on {n_hosts} "
                    f"{'host' if n_hosts == 1 else 'hosts'} ({', '.join(kbs)})",
            "hosts": WINDOWS_GROUP, "serial": SERIAL,
            "tasks": [{"name": "Install the security updates the plan lists",
                       "ansible.windows.win_updates": {
                           "category_names": ["SecurityUpdates"], "accept_list": kbs,
                           "state": "installed", "reboot": reboot}}]}


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


def _play(item: PlanItem, rank: int) -> dict[str, Any]:
    return {"name": f"{rank}. {item.summary}", "hosts": group_name(rank),
            "become": True, "serial": SERIAL, "tasks": _tasks(item, rank)}


def _windows(items: Iterable[PlanItem]) -> _WindowsWork:
    work = _WindowsWork()
    for item in items:
        if item.pending and item.manager == WINDOWS_UPDATE:
            work.add(item)
    return work


def playbook(plan: PatchPlan) -> list[dict[str, Any]]:
    """The playbook as data: one play per item with pending hosts, in plan order, then
    the Windows play."""
    work = _windows(plan.items)
    return [_play(item, rank) for rank, item in enumerate(plan.items, 1)
            if item.pending and item.manager != WINDOWS_UPDATE] + (
        [windows_play(work.kbs, work.reboot, len(work.hosts))] if work.kbs else [])


def _inventory_group(item: PlanItem, rank: int) -> dict[str, Any]:
    return {"hosts": {_host(h.name): _host_vars(item, rank, h) for h in item.pending}}


def inventory(plan: PatchPlan) -> dict[str, Any]:
    """The YAML inventory: one group per item, listing its pending hosts (the Windows
    items' hosts: one group, :data:`WINDOWS_GROUP`)."""
    children = {group_name(rank): _inventory_group(item, rank)
                for rank, item in enumerate(plan.items, 1)
                if item.pending and item.manager != WINDOWS_UPDATE}
    work = _windows(plan.items)
    if work.kbs:
        children[WINDOWS_GROUP] = {"hosts": dict.fromkeys(work.hosts)}
    return {"all": {"children": children}}


def _host_vars(item: PlanItem, rank: int, host: PlanHost) -> dict[str, Any] | None:
    if not item.located:
        return None
    return {commands_var(rank): [i.command for i in host.installations if i.command]}


def _ini_lines(item: PlanItem, rank: int) -> Iterator[str]:
    yield f"[{group_name(rank)}]"
    for h in item.pending:
        host_vars = _host_vars(item, rank, h)
        # INI host variables are literals: the list as JSON, single-quoted.
        yield (_host(h.name) if host_vars is None else
               f"{_host(h.name)} {commands_var(rank)}='"
               f"{json.dumps(host_vars[commands_var(rank)])}'")
    yield ""


def inventory_ini(plan: PatchPlan) -> str:
    """The same inventory in INI form."""
    lines = [line for rank, item in enumerate(plan.items, 1)
             if item.pending and item.manager != WINDOWS_UPDATE
             for line in _ini_lines(item, rank)]
    work = _windows(plan.items)
    if work.kbs:
        lines += [f"[{WINDOWS_GROUP}]", *work.hosts, ""]
    return "\n".join(lines)


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_files(items: Iterable[PlanItem], generated_at: datetime,
                out: dict[str, TextIO]) -> None:
    """The three files of :func:`export` written to ``out`` (file name → text stream) in
    one pass over ``items``, an item at a time: a plan of 10,000 hosts is never held
    whole, as YAML text or as data."""
    playbook_out, yml, ini = out["playbook.yml"], out["inventory.yml"], out["inventory.ini"]
    playbook_out.write("# Generated by PatchPilot from the patch plan of "
                       f"{generated_at.isoformat()}; run: ansible-playbook -i inventory.yml "
                       "playbook.yml\n")
    yml.write("all:\n")
    lines: list[str] = []
    written = 0
    work = _WindowsWork()
    for rank, item in enumerate(items, 1):
        if not item.pending:
            continue
        if item.manager == WINDOWS_UPDATE:  # one play for every KB, after the others
            work.add(item)
            continue
        if not written:
            yml.write("  children:\n")
        written += 1
        # A list of one play, and one group of the mapping under "children": their
        # concatenation is the whole list / mapping.  The group (thousands of hosts) is
        # written as a JSON flow mapping, which YAML reads as it is and which is written
        # a hundred times faster than YAML's block style.
        playbook_out.write(_dump([_play(item, rank)]))
        yml.write(f"    {group_name(rank)}: {json.dumps(_inventory_group(item, rank))}\n")
        if lines:
            ini.write("\n".join(lines) + "\n")
        lines = list(_ini_lines(item, rank))
    if work.kbs:
        if not written:
            yml.write("  children:\n")
        written += 1
        playbook_out.write(_dump([windows_play(work.kbs, work.reboot, len(work.hosts))]))
        yml.write(f"    {WINDOWS_GROUP}: "
                  f"{json.dumps({'hosts': dict.fromkeys(work.hosts)})}\n")
        if lines:
            ini.write("\n".join(lines) + "\n")
        lines = [f"[{WINDOWS_GROUP}]", *work.hosts, ""]
    ini.write("\n".join(lines))
    if not written:
        playbook_out.write("[]\n")
        yml.write("  children: {}\n")


def export_items(items: Iterable[PlanItem], generated_at: datetime) -> dict[str, str]:
    """File name → text: ``playbook.yml``, ``inventory.yml`` and ``inventory.ini``."""
    out = {name: io.StringIO() for name in FILES}
    write_files(items, generated_at, out)  # type: ignore[arg-type]
    return {name: text.getvalue() for name, text in out.items()}


def export(plan: PatchPlan) -> dict[str, str]:
    """The files of :func:`export_items` for a built plan."""
    return export_items(plan.items, plan.generated_at)


FILES = ("playbook.yml", "inventory.yml", "inventory.ini")


def write_zip(items: Iterable[PlanItem], generated_at: datetime, target: BinaryIO) -> None:
    """The files of :func:`write_files` zipped into ``target``, through temporary files
    (memory stays flat whatever the plan's size)."""
    spools = {name: tempfile.SpooledTemporaryFile(max_size=4 << 20, mode="w+t",
                                                  encoding="utf-8") for name in FILES}
    try:
        write_files(items, generated_at, spools)  # type: ignore[arg-type]
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, spool in spools.items():
                spool.seek(0)
                with archive.open(name, "w") as member:
                    while chunk := spool.read(1 << 16):
                        member.write(chunk.encode("utf-8"))
    finally:
        for spool in spools.values():
            spool.close()


def zip_archive(plan: PatchPlan) -> bytes:
    """The files of :func:`export` in one zip (what the CLI writes)."""
    buffer = io.BytesIO()
    write_zip(plan.items, plan.generated_at, buffer)
    return buffer.getvalue()
