"""npm lock files: ``package-lock.json`` and ``npm-shrinkwrap.json``.

Format: https://docs.npmjs.com/cli/v10/configuring-npm/package-lock-json -- JSON.
``lockfileVersion`` 1 (npm 5-6) nests a ``dependencies`` tree; 2 (npm 7-8) has both that
tree and a flat ``packages`` map; 3 (npm 9+) only the ``packages`` map, keyed by the
folder a package is installed in (``node_modules/a/node_modules/@s/b``).

Choices:

* Where ``packages`` exists it is read (it is the complete one in v2); else the v1 tree.
* ``packages[""]`` is the project itself; keys outside ``node_modules/`` are workspace
  folders and ``link: true`` entries point at them: its own code, skipped silently.  A
  link to a folder that is not one of the project's ``workspaces`` is a ``file:``
  dependency (``"dep": "file:../dep"``): not a registry release, and a warning says so.
* The name is the ``name`` field when present (npm writes it for an alias such as
  ``"string-width-cjs": "npm:string-width@4"``), else the path after the last
  ``node_modules/``.  In v1 an alias is spelt in the version: ``npm:string-width@4.2.0``.
* A package fetched from git, a tarball URL or a local file is not a registry release:
  it goes to Parsed.warnings.  Development, optional and bundled packages are kept.
* The same name and version installed in several folders is one package.
* A lock file without dependencies (``"dependencies": {}`` or only ``packages[""]``) is
  genuinely empty; a JSON object with neither key, or an unknown lockfileVersion, is not
  an npm lock file.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from patchpilot.errors import InventoryFormatError
from patchpilot.inventory.sources._lockfiles import load_json, package, unique
from patchpilot.inventory.sources.interface import Parsed
from patchpilot.models import Ecosystem, Package

KIND = "package-lock.json file"
_NODE_MODULES = "node_modules/"
# "resolved"/"version" prefixes of code that does not come from the npm registry.
_NOT_REGISTRY = ("git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:", "file:",
                 "link:", "http://", "https://")


def _from_registry(entry: dict[str, Any]) -> bool:
    """Whether a lock entry is a registry release (npm writes registry tarballs' URLs)."""
    resolved = entry.get("resolved")
    version = entry.get("version")
    if isinstance(version, str) and version.startswith(_NOT_REGISTRY):
        return False  # v1 writes the git URL or file: spec as the version
    if isinstance(resolved, str) and resolved.startswith(_NOT_REGISTRY):
        # A registry tarball: https://<registry>/<name>/-/<file>.tgz
        return resolved.startswith(("http://", "https://")) and "/-/" in resolved
    return True


def _split_alias(name: str, version: str) -> tuple[str, str]:
    """``("@babel/code-frame", "7.0.0")`` from v1's ``npm:@babel/code-frame@7.0.0``."""
    if version.startswith("npm:"):
        real, sep, real_version = version[4:].rpartition("@")
        if sep and real:
            return real, real_version
    return name, version


def _workspace_folders(packages_map: dict[str, Any]) -> list[str]:
    """The ``workspaces`` globs of ``packages[""]`` (npm writes them as package.json has)."""
    root = packages_map.get("")
    found = root.get("workspaces") if isinstance(root, dict) else None
    if isinstance(found, dict):  # the yarn-style {"packages": [...]} spelling
        found = found.get("packages")
    return [w.rstrip("/") for w in found or [] if isinstance(w, str)]


def _in_workspace(target: str, workspaces: list[str]) -> bool:
    target = target.removeprefix("./").rstrip("/")
    return any(fnmatch.fnmatchcase(target, w.removeprefix("./")) for w in workspaces)


def _from_packages(packages_map: Any, location: str) -> tuple[list[Package], list[str]]:
    if not isinstance(packages_map, dict):
        raise InventoryFormatError(location, "'packages' is not an object")
    workspaces = _workspace_folders(packages_map)
    packages: list[Package] = []
    warnings: list[str] = []
    for path, entry in packages_map.items():
        if not isinstance(entry, dict):
            raise InventoryFormatError(location, f"packages[{path!r}] is not an object")
        if _NODE_MODULES not in path:
            continue  # "" (the project) or a workspace folder
        if entry.get("link"):
            target = entry.get("resolved")
            if isinstance(target, str) and not _in_workspace(target, workspaces):
                warnings.append(f"{location}: {path} links to the folder {target} (a file: "
                                "dependency), not the npm registry; not checked")
            continue  # a symlink to a workspace folder
        name = entry.get("name") or path.rpartition(_NODE_MODULES)[2]
        if not _from_registry(entry):
            warnings.append(f"{location}: {path} comes from {entry.get('resolved')}, not "
                            "the npm registry; not checked")
            continue
        version = entry.get("version")
        if not isinstance(version, str) or not version:
            raise InventoryFormatError(location, f"packages[{path!r}] without a 'version'")
        packages.append(package("npm", name, version, location))
    return packages, warnings


def _from_tree(tree: Any, location: str, parents: str = ""
               ) -> tuple[list[Package], list[str]]:
    """The v1 ``dependencies`` tree, depth first (each entry may nest its own)."""
    if not isinstance(tree, dict):
        raise InventoryFormatError(location, f"'{parents}dependencies' is not an object")
    packages: list[Package] = []
    warnings: list[str] = []
    for key, entry in tree.items():
        if not isinstance(entry, dict):
            raise InventoryFormatError(location, f"dependency {parents}{key} is not an object")
        version = entry.get("version")
        if not isinstance(version, str) or not version:
            raise InventoryFormatError(location, f"dependency {parents}{key} without a 'version'")
        if _from_registry(entry):
            name, version = _split_alias(key, version)
            packages.append(package("npm", name, version, location))
        else:
            warnings.append(f"{location}: {parents}{key} comes from "
                            f"{entry.get('resolved') or version}, not the npm registry; "
                            "not checked")
        if "dependencies" in entry:
            nested, nested_warnings = _from_tree(
                entry["dependencies"], location, f"{parents}{key} > ")
            packages.extend(nested)
            warnings.extend(nested_warnings)
    return packages, warnings


def parse_package_lock(data: bytes, location: str) -> Parsed:
    """The installed packages of a package-lock.json / npm-shrinkwrap.json."""
    document = load_json(data, location, KIND)
    version = document.get("lockfileVersion")
    if version not in (1, 2, 3) or ("packages" not in document
                                    and "dependencies" not in document):
        raise InventoryFormatError(
            location, f"lockfileVersion {version!r} with no 'packages' or 'dependencies', "
                      f"not a {KIND} PatchPilot knows (1, 2 or 3)")
    if "packages" in document:
        packages, warnings = _from_packages(document["packages"], location)
    else:
        packages, warnings = _from_tree(document["dependencies"], location)
    return Parsed(unique(packages), warnings=tuple(warnings))


class NpmLockSource:
    """An npm lock file (``package-lock.json``, ``npm-shrinkwrap.json``)."""

    name = "npm"
    file_names: tuple[str, ...] = ("package-lock.json", "npm-shrinkwrap.json")

    def detect(self, name: str, head: bytes) -> bool:
        """By its fixed file names."""
        # By name, or by content: only npm's lock files carry "lockfileVersion" in JSON.
        return name in self.file_names or name.endswith(".json") and (
            b'"lockfileVersion"' in head and b'"requires"' in head
            or b'"lockfileVersion"' in head and b'"packages"' in head)

    def parse(self, data: bytes, location: str, distro: Ecosystem | None) -> Parsed:
        """Installed packages as npm packages; ``distro`` is ignored."""
        return parse_package_lock(data, location)


SOURCE = NpmLockSource()
