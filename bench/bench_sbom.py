"""Benchmark: parsing a 10 MB CycloneDX SBOM (JSON and XML) through the inventory source.

Target: under 2 s per 10 MB file.  The SBOMs are built from the real components of the
CycloneDX BOMs in ../shared/data (npm, Maven, Composer, Go, apk), copied under new names
(``<name>-r<N>``) until each file reaches 10 MB, and written to a temporary folder.

    python -m bench.bench_sbom [--size-mb 10] [--library]

``--library`` also times cyclonedx-python-lib's ``Bom.from_json`` / ``Bom.from_xml`` on the
same files, the reason the source does not use them (see sources/cyclonedx.py).
"""

from __future__ import annotations

import argparse
import copy
import gc
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from lxml import etree
from packageurl import PackageURL

from bench.common import DATA
from patchpilot.inventory.sources.cyclonedx import SOURCE, XML_NAMESPACE

SBOMS = DATA / "inventories" / "cyclonedx"
NS = XML_NAMESPACE + "1.4"


def _renamed_purl(purl: str, copy_number: int) -> str:
    """The purl of copy N of a component: the same package under the name ``<name>-rN``.

    The real BOMs overlap (juice-shop in four encodings), so the copy number counts
    components, not rounds: every copy is a distinct package, as in a real large SBOM.
    """
    parsed = PackageURL.from_string(purl)
    return PackageURL(type=parsed.type, namespace=parsed.namespace,
                      name=f"{parsed.name}-r{copy_number}", version=parsed.version,
                      qualifiers=parsed.qualifiers, subpath=parsed.subpath).to_string()


def _json_components() -> list[dict[str, Any]]:
    """Every top-level component (with its nested ones) of the real JSON BOMs."""
    components: list[dict[str, Any]] = []
    for path in sorted(SBOMS.glob("*.json")):
        components.extend(orjson.loads(path.read_bytes()).get("components") or [])
    return components


def build_json(target: int, folder: Path) -> tuple[Path, int]:
    """A CycloneDX 1.4 JSON file of at least ``target`` bytes, and its component count."""
    real = _json_components()
    out: list[dict[str, Any]] = []
    size, count = 0, 0
    while size < target:
        for component in real:
            clone = copy.deepcopy(component)
            stack = [clone]
            while stack:  # the component and every component nested in it
                item = stack.pop()
                stack.extend(item.get("components") or [])
                count += 1
                if item.get("purl"):
                    item["purl"] = _renamed_purl(item["purl"], count)
                    item["name"] = f"{item['name']}-r{count}"
                item.pop("bom-ref", None)
            out.append(clone)
            size += len(orjson.dumps(clone, option=orjson.OPT_INDENT_2))
            if size >= target:
                break
    document = {"bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1,
                "metadata": {"component": {"type": "application", "name": "bench"}},
                "components": out}
    path = folder / "bench.cdx.json"
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return path, count


def _retag(element: etree._Element) -> None:
    """Move an element of any CycloneDX XML version into the 1.4 namespace."""
    for item in element.iter():
        if isinstance(item.tag, str):
            item.tag = f"{{{NS}}}{item.tag.rpartition('}')[2]}"
    # Drop the old version's xmlns declaration, which would shadow the new default namespace
    # once the element is appended to the new document.
    etree.cleanup_namespaces(element)


def build_xml(target: int, folder: Path) -> tuple[Path, int]:
    """A CycloneDX 1.4 XML file of at least ``target`` bytes, and its component count."""
    real: list[etree._Element] = []
    for path in sorted(SBOMS.glob("*.xml")):
        root = etree.fromstring(path.read_bytes())
        components = root.find(f"{{{root.tag[1:].partition('}')[0]}}}components")
        real.extend(components if components is not None else [])
    bom = etree.Element(f"{{{NS}}}bom", nsmap={None: NS}, version="1")
    container = etree.SubElement(bom, f"{{{NS}}}components")
    size, count = 0, 0
    while size < target:
        for component in real:
            clone = copy.deepcopy(component)
            _retag(clone)
            for item in clone.iter(f"{{{NS}}}component"):
                count += 1
                item.attrib.pop("bom-ref", None)
                purl, name = item.find(f"{{{NS}}}purl"), item.find(f"{{{NS}}}name")
                if purl is not None and purl.text and name is not None:
                    purl.text = _renamed_purl(purl.text.strip(), count)
                    name.text = f"{name.text}-r{count}"
            container.append(clone)
            # Less the xmlns declaration a detached element carries and the document does not.
            size += len(etree.tostring(clone)) - len(f' xmlns="{NS}"')
            if size >= target:
                break
    path = folder / "bench.cdx.xml"
    path.write_bytes(etree.tostring(bom, xml_declaration=True, encoding="UTF-8"))
    return path, count


def _timed(parse: Callable[[], object], runs: int = 3) -> tuple[float, float]:
    """(first run, best run) in seconds."""
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        parse()
        times.append(time.perf_counter() - start)
    return times[0], min(times)


def _peak_mb(parse: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    parse()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def _library(path: Path) -> Callable[[], object]:
    from cyclonedx.model.bom import Bom

    data = path.read_bytes()

    def parse() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.suffix == ".json":
                return Bom.from_json(orjson.loads(data))  # type: ignore[attr-defined]
            return Bom.from_xml(etree.fromstring(data))  # type: ignore[attr-defined]

    return parse


def main() -> None:
    """Build the files, parse each, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--library", action="store_true",
                        help="also time cyclonedx-python-lib's deserialisation")
    args = parser.parse_args()
    target = int(args.size_mb * 1_000_000)
    with tempfile.TemporaryDirectory(prefix="pp-bench-sbom-") as tmp:
        folder = Path(tmp)
        for build in (build_json, build_xml):
            path, components = build(target, folder)
            data = path.read_bytes()

            def parse(data: bytes = data, path: Path = path) -> object:
                return SOURCE.parse(data, str(path), None)

            parsed = SOURCE.parse(data, str(path), None)
            first, best = _timed(parse)
            peak = _peak_mb(parse)
            verdict = "OK" if best < 2.0 else "OVER TARGET"
            print(f"{path.name}: {len(data) / 1e6:.1f} MB, {components} components "
                  f"({len(parsed.packages)} packages, {len(parsed.warnings)} warnings); "
                  f"parse {first:.2f} s first, {best:.2f} s best of 3; "
                  f"peak traced memory {peak:.0f} MB  [{verdict}: target < 2 s]")
            if args.library:
                lib_first, _ = _timed(_library(path), runs=1)
                print(f"  cyclonedx-python-lib Bom.from_{path.suffix[1:]}: {lib_first:.2f} s")


if __name__ == "__main__":
    main()
