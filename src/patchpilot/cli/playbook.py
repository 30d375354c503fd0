"""``patchpilot playbook``: add, list, show, enable, disable and dry-run playbooks; run one
round of what idle workers do with them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from patchpilot.cli.common import (
    cli_actor,
    console,
    err,
    fail,
    in_db,
    open_engine,
    print_json,
    wide,
)
from patchpilot.errors import PatchPilotError

playbook_app = typer.Typer(help="Playbooks: react to finding events (mail, webhooks, …).",
                           no_args_is_help=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(exc)


@playbook_app.command("add")
def playbook_add(file: Annotated[Path, typer.Argument(help="The playbook's YAML file.")]
                 ) -> None:
    """Store a playbook (a new version when one of its name exists)."""
    from patchpilot.automation.store import save_playbook

    document = _read(file)
    stored, created = in_db(lambda conn: save_playbook(conn, cli_actor(), document,
                                                       source=str(file)), write=True)
    console.print(f"playbook {stored.name} {'added' if created else 'stored'}: version "
                  f"{stored.version}, {'enabled' if stored.enabled else 'disabled'}")


@playbook_app.command("list")
def playbook_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every playbook with its trigger and actions."""
    from patchpilot.automation.store import list_playbooks

    found = [p.to_dict() for p in in_db(list_playbooks)]
    if json_:
        print_json(found)
        return
    table = Table("name", "enabled", "version", "events", "schedule", "actions")
    for p in found:
        schedule = p["schedule"]
        table.add_row(p["name"], "yes" if p["enabled"] else "no", str(p["version"]),
                      ", ".join(p["events"]) or "-",
                      f"{schedule['cron']} ({schedule['timezone']})" if schedule else "-",
                      ", ".join(p["actions"]))
    wide.print(table)


@playbook_app.command("show")
def playbook_show(name: Annotated[str, typer.Argument(help="The playbook's name.")]) -> None:
    """Print a playbook's current document."""
    from patchpilot.automation.store import get_playbook

    stored = in_db(lambda conn: get_playbook(conn, name))
    console.print(f"# {stored.name}: version {stored.version}, "
                  f"{'enabled' if stored.enabled else 'disabled'}", markup=False)
    print(stored.document, end="" if stored.document.endswith("\n") else "\n")


def _set(name: str, enabled: bool) -> None:
    from patchpilot.automation.store import set_enabled

    stored = in_db(lambda conn: set_enabled(conn, cli_actor(), name, enabled), write=True)
    console.print(f"playbook {stored.name} {'enabled' if enabled else 'disabled'}")


@playbook_app.command("enable")
def playbook_enable(name: Annotated[str, typer.Argument(help="The playbook's name.")]
                    ) -> None:
    """Enable a playbook."""
    _set(name, True)


@playbook_app.command("disable")
def playbook_disable(name: Annotated[str, typer.Argument(help="The playbook's name.")]
                     ) -> None:
    """Disable a playbook (its queued actions are still delivered)."""
    _set(name, False)


@playbook_app.command("test")
def playbook_test(
    file: Annotated[Path, typer.Argument(help="The playbook's YAML file.")],
    since: Annotated[str, typer.Option(help="Over the events of this long ago (2d, 12h).")
                     ] = "30d",
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Dry run: what the playbook would have done over the stored events (sends nothing,
    stores nothing)."""
    from patchpilot.automation.evaluate import simulate
    from patchpilot.clock import iso, now_utc
    from patchpilot.scans.schedules import ScheduleError, parse_duration

    document = _read(file)
    try:
        start = now_utc() - parse_duration(since)
    except ScheduleError as exc:
        fail(exc)
    found = in_db(lambda conn: simulate(conn, document, start, source=str(file)))
    if json_:
        print_json([{"event_id": m.event.id, "kind": m.event.kind, "at": iso(m.event.at),
                     "subject": m.subject, "action_index": m.action_index,
                     "action": m.action_type} for m in found])
        return
    table = Table("event", "at (UTC)", "kind", "subject", "asset", "vulnerability", "action")
    for m in found:
        table.add_row(str(m.event.id), iso(m.event.at) or "-", m.event.kind, m.subject,
                      m.payload["asset"]["name"] or "-", m.payload["finding"]["vuln_id"] or "-",
                      f"{m.action_index}: {m.action_type}")
    wide.print(table)
    events = len({m.event.id for m in found})
    console.print(f"{events} events would fire, {len(found)} actions (dry run: nothing sent)")


@playbook_app.command("run")
def playbook_run(
    limit: Annotated[int, typer.Option(help="Deliver at most this many due actions.")] = 100,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One round of what idle workers do: fire due schedules, evaluate new events, deliver
    due actions (mail, webhooks, …)."""
    from patchpilot.automation.run import run_automation
    from patchpilot.config import load_settings

    try:
        done = run_automation(open_engine(), load_settings(), limit=limit)
    except PatchPilotError as exc:
        fail(exc)
    if json_:
        print_json(done.to_dict())
    else:
        table = Table("schedules fired", "events evaluated", "queued", "collected", "sent",
                      "failed", "dead", "postponed", "tickets closed")
        table.add_row(*(str(n) for n in (done.fired, done.events, done.queued,
                                          done.collected, done.sent, done.failed, done.dead,
                                          done.postponed, done.tickets_closed)))
        wide.print(table)
        for name, problem in done.invalid.items():
            err.print(f"playbook {name} set aside: {problem}", markup=False)
    if done.errors:
        for line in done.errors:
            err.print(f"error: {line}", markup=False)
        raise typer.Exit(1)
