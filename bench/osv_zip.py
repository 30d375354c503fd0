"""Repack ../shared/data's OSV folders as per-ecosystem ``all.zip`` files of JSON records.

That is the format ``patchpilot db update`` downloads from osv.dev, so loading these zips
measures what an online user's update costs (the pypa repository's YAML files are its
own format, several times slower to parse).
"""

from __future__ import annotations

from pathlib import Path
from zipfile import ZIP_DEFLATED, ZipFile

import orjson
import yaml

from bench.common import DATA


def build(dest: Path) -> list[Path]:
    """Write PyPI-all.zip, Go-all.zip, AlmaLinux-all.zip into ``dest``; return them."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for eco, folder in (("PyPI", "osv/pypi"), ("Go", "osv/go"), ("AlmaLinux", "osv/almalinux")):
        target = dest / f"{eco}-all.zip"
        seen: set[str] = set()
        with ZipFile(target, "w", ZIP_DEFLATED, compresslevel=1) as zf:
            for path in sorted((DATA / folder).rglob("*")):
                if path.stem in seen:  # AlmaLinux repeats an ALSA under each release
                    continue
                seen.add(path.stem)
                if path.suffix == ".json":
                    zf.writestr(path.name, path.read_bytes())
                elif path.suffix == ".yaml":
                    record = yaml.load(path.read_bytes(), Loader=yaml.CBaseLoader)
                    zf.writestr(path.with_suffix(".json").name, orjson.dumps(record))
        out.append(target)
    return out
