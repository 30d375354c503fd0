"""The ``patchpilot`` command line.  Thin: parse, call one function of a stage, print.

One module per sub-app; this file is the one table that puts them together, in the order
``patchpilot --help`` lists them. Shared helpers (the consoles, the engine, failing with
one line) are in :mod:`patchpilot.cli.common`.
"""

from __future__ import annotations

import typer

from patchpilot import __version__
from patchpilot.cli import (
    access,
    agents,
    assets,
    backup,
    db,
    device,
    discover,
    groups,
    hook,
    imports,
    inventory,
    plan,
    playbook,
    priority,
    report,
    scan,
    secret,
    server,
    sweep,
)
from patchpilot.cli.common import console, err
from patchpilot.errors import PatchPilotError

app = typer.Typer(help="PatchPilot: find what is vulnerable, decide what to patch first.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def version() -> None:
    """Print the version."""
    console.print(f"patchpilot {__version__}")


# Commands of their own first, then the sub-apps: the order of `patchpilot --help`.
for _command in (version, server.server, server.up, server.worker, server.agent,
                 sweep.sweep, plan.plan, priority.sla):
    app.command()(_command)
app.command("import")(imports.import_)
app.command()(discover.discover)
app.command()(backup.backup)
app.command()(backup.restore)

for _sub_app, _name in (
    (db.db_app, "db"),
    (scan.scan_app, "scan"),
    (inventory.inventory_app, "inventory"),
    (access.token_app, "token"),
    (access.enrol_app, "enrol-token"),
    (access.user_app, "user"),
    # "agents", not "agent": `patchpilot agent --server URL --enrol TOKEN` runs the agent.
    (agents.agents_app, "agents"),
    (groups.schedule_app, "schedule"),
    (groups.window_app, "window"),
    (assets.assets_app, "assets"),
    (device.device_app, "device"),
    (priority.priority_app, "priority"),
    (groups.group_app, "group"),
    (groups.ssh_target_app, "ssh-target"),
    (report.report_app, "report"),
    (playbook.playbook_app, "playbook"),
    (hook.hook_app, "hook"),
    (secret.secret_app, "secret"),
):
    app.add_typer(_sub_app, name=_name)


def main() -> None:
    """Entry point of the console script."""
    try:
        app()
    except PatchPilotError as exc:  # anything a stage raised that a command did not catch
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from exc
