"""``patchpilot assets``: asset context from the CMDB and NetBox."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from patchpilot.cli.common import cli_actor, console, fail, in_db, open_engine, print_json, wide
from patchpilot.config import named_variable
from patchpilot.errors import PatchPilotError

assets_app = typer.Typer(help="Asset context from the CMDB: criticality, exposure, owners, "
                              "services, sites.", no_args_is_help=True)


def _print_apply(result, json_: bool) -> None:  # type: ignore[no-untyped-def]
    if json_:
        print_json(result.to_dict())
        return
    table = Table("row", "result", "asset", "matched by / reason", "keys")
    for m in (*result.updated, *result.created):
        table.add_row(m.record.where, "created" if m.key == "created" else "updated",
                      str(m.asset_id), m.key + ("" if m.changed else " (unchanged)"),
                      m.record.identity())
    for a in result.ambiguous:
        table.add_row(a.record.where, "[yellow]ambiguous[/]",
                      ", ".join(map(str, a.asset_ids)), a.reason, a.record.identity())
    for r in result.unmatched:
        table.add_row(r.where, "[red]unmatched[/]", "-", "no asset has these keys",
                      r.identity())
    wide.print(table)
    console.print(f"{len(result.updated)} updated ({result.changed} changed), "
                  f"{len(result.created)} created, {len(result.unmatched)} unmatched, "
                  f"{len(result.ambiguous)} ambiguous; {result.defaulted} unknown assets "
                  "given the default criticality")
    if result.devices:
        console.print(f"{len(result.devices)} network devices declared by their vendor/model/"
                      "firmware columns (patchpilot device list)")


@assets_app.command("import")
def assets_import(
    file: Annotated[Path, typer.Argument(help="CMDB export: .csv, .json, .yaml (columns in "
                                              "docs/cmdb.md).")],
    create_missing: Annotated[bool, typer.Option(
        "--create-missing", help="Create placeholder assets for rows no asset matches.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import criticality, exposure, owners and services; lists unmatched rows."""
    from patchpilot.assets.cmdb import parse_file
    from patchpilot.assets.devices import apply_cmdb

    try:
        records = parse_file(file)
        result = apply_cmdb(open_engine(), records, source="cmdb-import", actor=cli_actor(),
                            create_missing=create_missing, label=file.name)
    except PatchPilotError as exc:
        fail(exc, "nothing was stored; fix the rows above and run the import again")
        return
    _print_apply(result, json_)


@assets_app.command("unknown")
def assets_unknown(
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Assets the scans and imported reports found but the CMDB does not describe."""
    from patchpilot.assets.context import unknown_assets

    found = in_db(unknown_assets)
    if json_:
        print_json(found)
        return
    table = Table("id", "name", "fqdn", "ip addresses", "criticality", "discovered by",
                  "last seen (UTC)")
    for a in found:
        table.add_row(str(a["id"]), a["name"], a["fqdn"] or "-", ", ".join(a["ip_addresses"]),
                      f"{a['criticality']} (default)" if a["defaulted"] else "-",
                      a["discovered_by"] or "-", a["last_seen"] or "-")
    wide.print(table)
    console.print(f"{len(found)} unknown assets")


@assets_app.command("netbox-sync")
def assets_netbox_sync(
    url: Annotated[str, typer.Option(help="NetBox's base URL, e.g. https://netbox.example.")],
    token_env: Annotated[str, typer.Option(
        help="Environment variable holding the API token (never on the command line).")
    ] = "NETBOX_TOKEN",
    create_missing: Annotated[bool, typer.Option(
        "--create-missing", help="Create placeholder assets for devices no asset matches.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sync asset context from NetBox devices and virtual machines (custom fields)."""
    from patchpilot.assets.netbox import sync

    token = named_variable(token_env)
    if not token:
        fail(PatchPilotError(f"environment variable {token_env} is not set"),
              "export the NetBox API token in it, or name another with --token-env")
        return
    try:
        done = sync(open_engine(), url, token, actor=cli_actor(), create_missing=create_missing)
    except PatchPilotError as exc:
        fail(exc)
        return
    if not json_:
        console.print(f"NetBox {done.netbox_version or '?'}: {done.devices} devices, "
                      f"{done.virtual_machines} virtual machines")
    _print_apply(done.result, json_)
