"""The registry: every format module is registered once; detection and refusal."""

from __future__ import annotations

import io
import pkgutil

import pytest

import patchpilot.importers.formats as formats_package
from patchpilot.importers import registry
from patchpilot.importers.model import Sniff


def test_every_format_module_is_registered_once() -> None:
    modules = {m.name for m in pkgutil.iter_modules(formats_package.__path__)
               if not m.name.startswith("_")}
    registered = [f.parse.__module__.rsplit(".", 1)[-1] for f in registry.FORMATS]
    # A module may define several formats (XML and CSV of one scanner), each registered.
    assert modules == set(registered)
    names = [f.name for f in registry.FORMATS]
    assert len(names) == len(set(names))


def test_unknown_content_is_refused_with_the_formats_tried() -> None:
    with pytest.raises(registry.UnknownFormat) as caught:
        registry.detect(Sniff("notes.txt", b"hello world\n"))
    message = str(caught.value)
    assert message.startswith("notes.txt: no importer recognises this text file; tried ")
    for name in registry.names():
        assert name in message


def test_empty_file_is_named_empty() -> None:
    with pytest.raises(registry.UnknownFormat, match="this empty file"):
        registry.detect(registry.sniff(io.BytesIO(b""), "empty.json"))


def test_unknown_format_name() -> None:
    with pytest.raises(registry.UnknownFormat, match="no report format 'nope'"):
        registry.by_name("nope")
