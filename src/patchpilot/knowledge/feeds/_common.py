"""Helpers every feed module shares: reading (gzip, JSON, zip heads) and downloading.

Kept apart from the feeds so that adding a feed never means importing another feed.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from patchpilot.errors import FeedDownloadError, FeedError
from patchpilot.knowledge.cvss import metric_from_vector
from patchpilot.models import CvssMetric

GZIP_MAGIC = b"\x1f\x8b"


def peek(head: bytes) -> bytes:
    """The start of the decompressed text when ``head`` begins a gzip stream, else ``head``."""
    if not head.startswith(GZIP_MAGIC):
        return head
    try:
        # A partial stream decompresses as far as it goes; wbits=31 expects a gzip header.
        return zlib.decompressobj(wbits=31).decompress(head)
    except zlib.error:
        return b""


def read_file(path: Path | str) -> bytes:
    """The bytes of a file, read with two system calls and no file object.

    A full load reads tens of thousands of small OSV files: ``Path.read_bytes`` costs
    twice as much per file (a buffered file object, an ``fstat``).  Raises ``OSError``.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def load_json(path: Path | str, data: bytes | None = None) -> Any:
    """Decode one JSON document (gzip-compressed or not) from ``data`` or the file at ``path``.

    Anything unreadable, including a truncated download, becomes a :class:`FeedError`
    naming the file and, for bad JSON, the line where decoding stopped.
    """
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise FeedError(path, f"cannot be read: {exc.strerror or exc}") from exc
    if data.startswith(GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise FeedError(path, f"corrupt or truncated gzip data: {exc}") from exc
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FeedError(path, f"not valid JSON, truncated or corrupt: {exc.msg}",
                        line=exc.lineno) from exc


# --------------------------------------------------------------------------- YAML

_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_BOOLS: dict[str, bool] = yaml.constructor.SafeConstructor.bool_values


class _Unusual(Exception):
    """A node the fast constructor leaves to PyYAML's own (merge keys, explicit tags)."""


def yaml_loader(keep: Callable[[str], bool]) -> Callable[[bytes], Any]:
    """A YAML ``load(data)`` on libyaml's safe loader, resolving only the implicit tags
    that ``keep`` accepts (the others stay strings), and fast.

    Feeds keep versions as text: YAML 1.1 would read an unquoted ``1.10`` as the float 1.1.

    libyaml parses in C, but PyYAML then resolves and constructs every scalar in Python
    (about two thirds of a load of an OSV record).  Here a plain scalar whose first
    character no kept resolver starts with is a string at once, other resolutions are
    remembered, and the common tree (str, bool, null, lists, maps) is built by one small
    function.  Anything else -- a merge key, an explicit tag -- is loaded again by PyYAML's
    own constructor, so the result (or the error) is always exactly PyYAML's.
    """
    base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader  # libyaml is ~10x faster
    resolvers = {first: [(tag, rx) for tag, rx in entries if keep(tag)]
                 for first, entries in base.yaml_implicit_resolvers.items()}
    resolvers = {first: entries for first, entries in resolvers.items() if entries}
    slow_loader: Any = type("FeedYamlLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    slow_resolve = slow_loader.resolve
    firsts = frozenset(resolvers)
    anywhere = None in resolvers  # a resolver for any first character
    known: dict[str, str] = {}  # plain scalar -> tag, for the values that may be special

    def resolve(self: Any, kind: type, value: str | None, implicit: tuple[bool, bool]) -> str:
        if kind is SequenceNode:
            return _SEQ
        if kind is MappingNode:
            return _MAP
        if anywhere:
            return slow_resolve(self, kind, value, implicit)  # type: ignore[no-any-return]
        if not implicit[0] or (value and value[0] not in firsts):
            return _STR  # quoted, or no kept resolver starts with its first character
        tag = known.get(value)  # type: ignore[arg-type]
        if tag is None:
            tag = slow_resolve(self, kind, value, implicit)
            if len(known) < 4096:
                known[value] = tag  # type: ignore[index]
        return tag

    # No path resolvers are ever added, so descending and ascending the node path is a
    # no-op; the composer calls both for every node, and a builtin type is the cheapest
    # callable that accepts (parent, index) and () respectively.
    fast_loader: Any = type("FastFeedYamlLoader", (slow_loader,), {
        "resolve": resolve, "descend_resolver": staticmethod(slice),
        "ascend_resolver": staticmethod(tuple)})

    def build(node: Any, memo: dict[int, Any]) -> Any:
        kind, tag = node.__class__, node.tag
        if kind is ScalarNode:
            if tag == _STR:
                return node.value
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return _BOOLS[node.value.lower()]
            raise _Unusual
        # An alias is the very node it names: it becomes the very same object, as PyYAML's.
        seen = memo.get(id(node))
        if seen is not None:
            return seen
        if kind is SequenceNode and tag == _SEQ:
            items: list[Any] = []
            memo[id(node)] = items
            items.extend([build(child, memo) for child in node.value])
            return items
        if kind is MappingNode and tag == _MAP:
            mapping: dict[Any, Any] = {}
            memo[id(node)] = mapping
            for key, value in node.value:
                if key.__class__ is not ScalarNode:
                    raise _Unusual  # PyYAML says "found unhashable key"
                mapping[build(key, memo)] = build(value, memo)
            return mapping
        raise _Unusual

    def load(data: bytes) -> Any:
        loader = fast_loader(data)
        try:
            node = loader.get_single_node()  # parse errors are raised here, as PyYAML's
        finally:
            loader.dispose()
        if node is None:
            return None
        try:
            return build(node, {})
        except (_Unusual, KeyError, RecursionError):
            return yaml.load(data, Loader=slow_loader)  # a SafeLoader subclass: safe

    return load


class JsonObject:
    """Checked access to one decoded JSON object.

    Every accessor validates the type it returns, so a feed of an unexpected shape raises
    :class:`FeedError` naming the file and the field path (``vulnerabilities[3].cve.id``)
    instead of a ``KeyError`` or ``TypeError`` deep inside a transformer.
    """

    __slots__ = ("obj", "path", "where")

    def __init__(self, obj: Any, path: Path | str, where: str) -> None:
        if not isinstance(obj, dict):
            raise FeedError(path, f"{where or 'document'} is not a JSON object")
        self.obj: dict[str, Any] = obj
        self.path = path
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, detail: str) -> FeedError:
        """A FeedError about this object (for checks the accessors do not cover)."""
        return FeedError(self.path, f"{self.where or 'document'}: {detail}")

    def get(self, key: str) -> Any:
        """The raw value of ``key`` (None when absent)."""
        return self.obj.get(key)

    def text(self, key: str, *, required: bool = False) -> str | None:
        """The string at ``key``; None when absent (an error when ``required``)."""
        value = self.obj.get(key)
        if value is None or value == "":
            if required:
                raise FeedError(self.path, f"{self._name(key)} is missing")
            return None
        if not isinstance(value, str):
            raise FeedError(self.path, f"{self._name(key)} is not a string")
        return value

    def texts(self, key: str) -> list[str]:
        """The list of strings at ``key`` (empty when absent)."""
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FeedError(self.path, f"{self._name(key)} is not a list of strings")
        return value

    def child(self, key: str, *, required: bool = False) -> JsonObject:
        """The object at ``key``; an empty one when absent (an error when ``required``)."""
        value = self.obj.get(key)
        if value is None:
            if required:
                raise FeedError(self.path, f"{self._name(key)} is missing")
            value = {}
        return JsonObject(value, self.path, self._name(key))

    def children(self, key: str, *, required: bool = False) -> list[JsonObject]:
        """The objects in the list at ``key`` (empty when absent)."""
        value = self.obj.get(key)
        if value is None:
            if required:
                raise FeedError(self.path, f"{self._name(key)} is missing")
            return []
        if not isinstance(value, list):
            raise FeedError(self.path, f"{self._name(key)} is not a list")
        name = self._name(key)
        return [JsonObject(item, self.path, f"{name}[{i}]") for i, item in enumerate(value)]


def english(descriptions: list[JsonObject], *, value_key: str = "value") -> str | None:
    """The English text of a list of ``{lang, value}`` objects (``en``, ``en-US``, ``eng``)."""
    for item in descriptions:
        lang = (item.text("lang") or "").lower()
        if lang.startswith("en"):
            return item.text(value_key)
    return None


def add_metric(metrics: dict[tuple[str, str], CvssMetric], vector: str | None,
               source: str) -> None:
    """Score ``vector`` and keep it once per (vector, source); invalid vectors are skipped."""
    if not vector:
        return
    metric = metric_from_vector(vector, source=source)
    if metric is not None:
        metrics.setdefault((metric.vector, source), metric)


def add_reference(references: dict[str, str], url: str | None, kind: str) -> None:
    """Keep one reference per URL; a later "exploit" tag on the same URL wins."""
    if not url:
        return
    if url not in references or kind == "exploit":
        references[url] = kind


# --------------------------------------------------------------------------- transformer


def first_zip_member(head: bytes) -> str:
    """The name of the first member from a zip's first local file header, or ""."""
    # Local file header: signature, 22 bytes of fields, name length at offset 26, name at 30.
    # https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT section 4.3.7
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return ""
    length = int.from_bytes(head[26:28], "little")
    return head[30:30 + length].decode("utf-8", "replace").lower()


def download_if_changed(client: httpx.Client, url: str, target: Path) -> bool:
    """GET ``url`` into ``target`` unless the server says it is unchanged; True if written.

    The validators of the last download (ETag, Last-Modified) are kept next to the file in
    ``<name>.http.json`` and sent back (RFC 9110 section 13.1), so an unchanged multi-MB
    feed costs one 304.  The body is streamed to a temporary file and renamed, so a failed
    download never leaves a truncated feed for ``read``.
    """
    meta_path = target.with_name(target.name + ".http.json")
    headers = {}
    if target.exists() and meta_path.exists():
        try:
            meta = orjson.loads(meta_path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            meta = {}  # a damaged cache only costs a full download
        if type(meta) is dict:
            if type(meta.get("etag")) is str:
                headers["If-None-Match"] = meta["etag"]
            if type(meta.get("last_modified")) is str:
                headers["If-Modified-Since"] = meta["last_modified"]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code == 304:
                return False
            if response.status_code >= 400:
                raise FeedDownloadError(f"{url}: HTTP {response.status_code}")
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
            validators = {"etag": response.headers.get("ETag"),
                          "last_modified": response.headers.get("Last-Modified")}
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise FeedDownloadError(f"{url}: {exc}") from exc
    os.replace(partial, target)
    meta_path.write_bytes(orjson.dumps(validators))
    return True
