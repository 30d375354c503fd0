"""The upload forms' body, read as it streams: the CMDB import and the SBOM / lock file
upload pages (``pages/assets_import.py``, ``pages/assets_upload.py``) share it, and the
scanner report imports (``pages/imports.py``, ``api/imports.py``) spool theirs to disk
with it (:func:`spool_upload`).

The routes read the multipart body themselves (:class:`StreamedForm`), rather than
through ``File()`` parameters or ``request.form()``, so that the session and role are
checked before the body is read, the CSRF token before the file is, and an oversized
upload is refused at the limit (by its Content-Length before a byte is read; a chunked one
when the limit is passed), never spooled to disk.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request, status
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from patchpilot.server.limits import FORM_OVERHEAD
from patchpilot.server.web.render import check_csrf

# The text fields of the forms (a CSRF token, an asset name of at most 300 characters, a
# distribution, a type, a checkbox): far below these.
_MAX_FIELDS = 20
_MAX_FIELD = 4 << 10


class Refused(Exception):
    """An upload the page answers with its form and a message (not stored)."""

    def __init__(self, problems: list[str], status_code: int = 422) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.status_code = status_code


def too_large(tr: Any, limit: int, name: str = "") -> Refused:
    message = tr.gettext("The file is larger than %(mb)s MB.") % {"mb": limit >> 20}
    return Refused([f"{name}: {message}" if name else message], 413)


class StreamedForm:
    """A ``multipart/form-data`` body read as it streams (python-multipart's parser, fed
    chunk by chunk): its text fields, and its one file held in memory up to the limit.

    Starlette's ``request.form()`` would spool the file to a temporary file in full before
    the route sees a field: the CSRF token checked after a 300 MB upload was on disk.  Here
    the token is checked the moment its part has arrived, and a file part that comes before
    it is refused (403) before a byte of the file is kept; the browser sends the fields in
    the form's order and the token is the forms' first field.  A file over the limit stops
    the read at the limit (413).  With a ``sink`` the file goes there as it arrives (a
    scanner report of hundreds of MB), not into memory.
    """

    def __init__(self, request: Request, limit: int, tr: Any, *, token_checked: bool,
                 sink: IO[bytes] | None = None) -> None:
        self.request = request
        self.limit = limit
        self.tr = tr
        self.token_checked = token_checked
        self.sink = sink
        self.size = 0  # bytes of the file received
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.data = bytearray()
        self._header = bytearray()
        self._value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._text = bytearray()

    def callbacks(self) -> dict[str, Any]:
        """The parser's callbacks."""
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._part_end}

    def _part_begin(self) -> None:
        self._headers.clear()
        self._text.clear()
        self._name, self._is_file = "", False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header).lower()] = bytes(self._value)
        self._header.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = b"filename" in options
        if self._is_file:
            if not self.token_checked:
                raise HTTPException(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong "
                                    "(the csrf field must come before the file)")
            if self.filename is not None:
                raise Refused([self.tr.gettext("Choose a file.")], 400)  # a second file
            self.filename = options[b"filename"].decode("utf-8", "replace")
        elif len(self.fields) >= _MAX_FIELDS:
            raise Refused([f"more than {_MAX_FIELDS} form fields"], 400)

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.size += end - start
            if self.size > self.limit:
                raise too_large(self.tr, self.limit, self.display_name())
            if self.sink is not None:
                self.sink.write(data[start:end])
            else:
                self.data += data[start:end]
        else:
            self._text += data[start:end]
            if len(self._text) > _MAX_FIELD:
                raise Refused([f"{self._name}: longer than {_MAX_FIELD} bytes"], 400)

    def _part_end(self) -> None:
        if self._is_file:
            return
        value = self._text.decode("utf-8", "replace")
        if self._name == "csrf" and not self.token_checked:
            check_csrf(self.request, value)  # 403 before any file part is read
            self.token_checked = True
        self.fields[self._name] = value.strip()

    def display_name(self) -> str:
        """The file's name as the browser gave it, never a path of the client's disk."""
        return Path((self.filename or "").replace("\\", "/")).name or "upload"


async def read_upload(request: Request, limit: int, tr: Any
                       ) -> tuple[dict[str, str], str, bytes]:
    """The form's text fields, the uploaded file's name and content (at most ``limit``).

    The CSRF token is checked before the file is read: from an ``X-CSRF-Token`` header
    before a byte of the body, else from the form's ``csrf`` field, which must precede the
    file.  Raises Refused for a body or file over the limit and for a form without a file;
    HTTPException 403 for a missing or wrong CSRF token.
    """
    form = await _read_form(request, limit, tr, csrf=True)
    return form.fields, form.display_name(), bytes(form.data)


async def spool_upload(request: Request, limit: int, tr: Any, folder: Path, *,
                       csrf: bool = True) -> tuple[dict[str, str], str, Path]:
    """As :func:`read_upload`, the file written to a new file in ``folder`` as it arrives
    (its path is returned; the caller owns it).  Nothing is left in ``folder`` when the
    upload is refused.  ``csrf=False``: an API request, authenticated by its bearer token,
    which carries no session and no CSRF token."""
    handle, name = tempfile.mkstemp(dir=folder, prefix="upload-")
    spooled = Path(name)
    try:
        with os.fdopen(handle, "wb") as sink:
            form = await _read_form(request, limit, tr, csrf=csrf, sink=sink)
    except BaseException:
        spooled.unlink(missing_ok=True)
        raise
    return form.fields, form.display_name(), spooled


async def _read_form(request: Request, limit: int, tr: Any, *, csrf: bool,
                     sink: IO[bytes] | None = None) -> StreamedForm:
    """The form read whole (the file into memory or ``sink``); Refused or 403 as
    :func:`read_upload` says."""
    declared = request.headers.get("content-length", "")
    header_token = request.headers.get("x-csrf-token") if csrf else None
    if header_token is not None:
        check_csrf(request, header_token)
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise too_large(tr, limit)
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    form = StreamedForm(request, limit, tr, token_checked=not csrf or header_token is not None,
                        sink=sink)
    if kind == b"multipart/form-data" and b"boundary" in params:
        parser = MultipartParser(params[b"boundary"], form.callbacks())  # type: ignore[arg-type]
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError as exc:
            raise Refused([f"the form cannot be read: {exc}"], 400) from exc
    else:
        # A form without a file (url-encoded): its fields only, bounded as a field is.
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FIELDS * _MAX_FIELD:
                raise Refused(["the form is too large"], 400)
        for key, value in parse_qsl(body.decode("utf-8", "replace"))[:_MAX_FIELDS]:
            form.fields[key] = value.strip()
    if not form.token_checked:
        check_csrf(request, form.fields.get("csrf"))  # a form without a file may lack one
    if not form.filename:
        raise Refused([tr.gettext("Choose a file.")])
    return form


def upload_limit(request: Request) -> int:
    """The largest file the upload form takes: ``PATCHPILOT_MAX_UPLOAD_MB``.  The largest
    SBOM in ../shared/data (juice-shop's CycloneDX) is 3 MB; a container image's syft JSON
    can reach tens of MB."""
    return int(request.app.state.max_upload)
