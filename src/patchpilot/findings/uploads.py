"""The rule for inventories read from a file (an SBOM, a lock file, a package list).

An inventory is an asset's whole package list.  A lock file uploaded under the name of a
host that an agent or an SSH scan reports would replace that host's packages and close its
findings as fixed, so the ingest refuses it -- whichever edge it came through (the upload
page, ``POST /api/inventories``, the CLI).  The way out is another asset: the application.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from patchpilot.db.tables import assets, inventories
from patchpilot.errors import InvalidInput
from patchpilot.inventory.model import Inventory

# The collector name of an inventory made from a file (``patchpilot scan file``, uploads).
FILE_COLLECTOR = "file"


class ReplacesScan(InvalidInput):
    """A file's inventory that would replace the inventory a host's scan stored."""


def refuse_replacing_a_scan(conn: Connection, asset_id: int, inv: Inventory) -> None:
    """Raise :class:`ReplacesScan` when ``inv``, read from a file, would become the latest
    inventory of asset ``asset_id`` whose latest one came from a scan (agent, SSH, …).

    Any other inventory, or an asset never scanned or only ever fed files, passes.
    """
    if inv.collector.name != FILE_COLLECTOR:
        return
    row = conn.execute(
        select(assets.c.name, inventories.c.collector)
        .join(inventories, assets.c.last_inventory_id == inventories.c.id)
        .where(assets.c.id == asset_id)).first()
    if row is None or row.collector == FILE_COLLECTOR:
        return
    name = inv.asset.hostname or row.name
    raise ReplacesScan(f"asset: {name!r} is scanned by its {row.collector} collector; a file "
                       "uploaded under its name would replace that inventory and close "
                       f"its findings. Name the application instead, e.g. '{name}-app'.",
                       field="asset")


class NothingRead(InvalidInput):
    """A file's inventory that lists no package: nothing could be read from the file."""


def refuse_empty_file(inv: Inventory, where: str) -> None:
    """Raise :class:`NothingRead` when ``inv`` was read from a file (collector ``file``)
    and lists no package: stored, it would replace the asset's package list with nothing.
    ``where`` names the input in the message (``request body``).  A Windows file's
    inventory has no packages by nature (the host is judged by its build and KBs) and
    passes."""
    if inv.packages or inv.windows is not None or inv.collector.name != FILE_COLLECTOR:
        return
    raise NothingRead(f"{where}: the inventory (collector 'file') lists no package: nothing "
                      "could be read from the file it was made of, so it is not stored")
