"""``patchpilot group``, ``ssh-target``, ``schedule`` and ``window``: asset groups and
when their hosts are scanned."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from patchpilot.cli.common import cli_actor, console, fail, in_db, open_engine, print_json, wide
from patchpilot.errors import PatchPilotError

group_app = typer.Typer(help="Asset groups (a plant, a site, a team's servers).",
                        no_args_is_help=True)
ssh_target_app = typer.Typer(help="Hosts without an agent, scanned over SSH by the workers.",
                             no_args_is_help=True)
schedule_app = typer.Typer(help="Scan schedules of asset groups (cron or RRULE, in a time zone).",
                           no_args_is_help=True)
window_app = typer.Typer(help="Maintenance windows (scans only inside) and blackouts (never "
                              "during) of asset groups.", no_args_is_help=True)


@group_app.command("create")
def group_create(
    name: Annotated[str, typer.Argument(help="The group's name.")],
    description: Annotated[str | None, typer.Option(help="What the group is.")] = None,
    max_concurrent: Annotated[int, typer.Option(
        help="At most this many scans of the group's hosts at once.")] = 5,
    discover: Annotated[list[str] | None, typer.Option(
        "--discover", help="An address range (CIDR) the group's schedules also discover "
                           "with nmap; repeatable (see docs/network.md).")] = None,
) -> None:
    """Create an asset group (schedules and windows belong to groups)."""
    from patchpilot.assets.groups import create_group

    try:
        with open_engine().begin() as conn:
            group_id = create_group(conn, cli_actor(), name, description=description,
                                    max_concurrent_scans=max_concurrent,
                                    rule={"discover": discover} if discover else None)
    except (PatchPilotError, ValueError) as exc:
        fail(exc)
        return
    console.print(f"group {group_id}: {name}")


@ssh_target_app.command("add")
def ssh_target_add(
    target: Annotated[str, typer.Argument(help="user@host[:port]")],
    group: Annotated[str | None, typer.Option(help="Put it in this asset group.")] = None,
    name: Annotated[str | None, typer.Option(help="Its name until the first scan.")] = None,
) -> None:
    """Add a host the workers scan over SSH (keys: PATCHPILOT_SSH_IDENTITY and
    PATCHPILOT_SSH_KNOWN_HOSTS in the worker's environment)."""
    from patchpilot.assets.groups import group_id_named
    from patchpilot.scans.groups import add_ssh_target

    try:
        with open_engine().begin() as conn:
            group_id = group_id_named(conn, group) if group else None
            asset_id = add_ssh_target(conn, cli_actor(), target, group_id=group_id,
                                      name=name)
    except (PatchPilotError, ValueError) as exc:
        fail(exc)
        return
    console.print(f"asset {asset_id}: SSH target {target}"
                  + (f" in group {group}" if group else ""))


@schedule_app.command("add")
def schedule_add(
    group: Annotated[str, typer.Option(help="The asset group's name.")],
    cron: Annotated[str | None, typer.Option(help='A cron expression, e.g. "0 2 * * 6".')
                    ] = None,
    rrule: Annotated[str | None, typer.Option(
        help='An RFC 5545 RRULE, e.g. "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0".')] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone the expression is read in.")
                  ] = "UTC",
    disabled: Annotated[bool, typer.Option(help="Store it disabled.")] = False,
) -> None:
    """Add a scan schedule to a group; prints it with its first run."""
    from patchpilot.assets.groups import group_id_named
    from patchpilot.scans.groups import add_schedule

    if (cron is None) == (rrule is None):
        fail(PatchPilotError("give exactly one of --cron and --rrule"))
    kind, expression = ("cron", cron) if cron is not None else ("rrule", rrule)
    stored = in_db(lambda conn: add_schedule(conn, cli_actor(), group_id_named(conn, group),
                                              kind, str(expression), tz,
                                              enabled=not disabled), write=True)
    console.print(f"schedule {stored['id']} for group {group}: {stored['kind']} "
                  f"{stored['expression']!r} ({stored['timezone']}); next run "
                  f"{stored['next_run_at']}")


@schedule_app.command("list")
def schedule_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every schedule with its group and next run."""
    from patchpilot.scans.groups import list_schedules

    found = in_db(list_schedules)
    if json_:
        print_json(found)
        return
    table = Table("id", "group", "kind", "expression", "time zone", "enabled", "next run (UTC)")
    for s in found:
        table.add_row(str(s["id"]), s["group"], s["kind"], s["expression"], s["timezone"],
                      "yes" if s["enabled"] else "no", s["next_run_at"] or "-")
    wide.print(table)


@schedule_app.command("remove")
def schedule_remove(schedule_id: Annotated[int, typer.Argument(help="The schedule's id.")]
                    ) -> None:
    """Remove a schedule."""
    from patchpilot.scans.groups import delete_schedule

    in_db(lambda conn: delete_schedule(conn, cli_actor(), schedule_id), write=True)
    console.print(f"schedule {schedule_id} removed")


@window_app.command("add")
def window_add(
    group: Annotated[str, typer.Option(help="The asset group's name.")],
    rrule: Annotated[str | None, typer.Option(
        help='Each start, e.g. "FREQ=WEEKLY;BYDAY=SA;BYHOUR=1" (with --duration).')] = None,
    duration: Annotated[str | None, typer.Option(help="How long each lasts: 4h, 90m, 1d.")
                        ] = None,
    start: Annotated[str | None, typer.Option(
        help="Or one absolute period: its start (ISO 8601 with an offset).")] = None,
    end: Annotated[str | None, typer.Option(help="… and its end.")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone the RRULE is read in.")] = "UTC",
    blackout: Annotated[bool, typer.Option(
        help="A blackout (never scan during) instead of a window.")] = False,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
) -> None:
    """Add a maintenance window or blackout period to a group."""
    from datetime import datetime

    from patchpilot.assets.groups import group_id_named
    from patchpilot.scans.groups import add_window
    from patchpilot.scans.schedules import ScheduleError, parse_duration

    try:
        moments = []
        for name, text in (("--start", start), ("--end", end)):
            try:
                moment = datetime.fromisoformat(text) if text else None
            except ValueError as exc:
                raise ScheduleError(f"{name}: {text!r} is not an ISO 8601 time") from exc
            if moment is not None and moment.tzinfo is None:
                raise ScheduleError(f"{name}: give a UTC offset (…Z or …+09:00)")
            moments.append(moment)
        engine = open_engine()
        with engine.begin() as conn:
            stored = add_window(conn, cli_actor(), group_id_named(conn, group),
                                kind="blackout" if blackout else "window", rrule=rrule,
                                duration=parse_duration(duration) if duration else None,
                                starts_at=moments[0], ends_at=moments[1], timezone=tz,
                                description=description)
    except PatchPilotError as exc:
        fail(exc)
        return
    console.print(f"{stored['kind']} {stored['id']} added to group {group}")


@window_app.command("list")
def window_list(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every maintenance window and blackout."""
    from patchpilot.scans.groups import list_windows

    found = in_db(list_windows)
    if json_:
        print_json(found)
        return
    table = Table("id", "group", "kind", "when", "time zone", "description")
    for w in found:
        when = (f"{w['rrule']} for {w['duration_minutes']} min" if w["rrule"]
                else f"{w['starts_at']} – {w['ends_at']}")
        table.add_row(str(w["id"]), str(w["group_id"]), w["kind"], when, w["timezone"],
                      w["description"] or "")
    wide.print(table)
