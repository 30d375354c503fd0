"""Errors by kind.  Each names the file, field or line it is about, so a user can act."""

from __future__ import annotations

from pathlib import Path


class PatchPilotError(Exception):
    """Base of every error the product reports to a user (never a bare traceback)."""


# --- kinds the edges answer alike -----------------------------------------------------------
# A stage raises these (or a kind of its own derived from them); the server maps them with
# one exception handler (404 / 409 / 422, JSON under /api, an HTML page for the dashboard)
# and the CLI prints the message, so no route or command translates errors by hand.


class NotFound(PatchPilotError):
    """An id or name that names nothing stored (an unknown finding, group, sweep, …).

    ``field`` is the request field that named it, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class InvalidInput(PatchPilotError):
    """A request that was understood but names something unusable: a bad expression,
    time zone, period or option.  ``field`` names the field when the stage knows it (the
    message says it too)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class Conflict(PatchPilotError):
    """A request that clashes with what is stored: a name already taken, a row in a state
    that forbids the change.  ``field`` names the field when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class FeedError(PatchPilotError):
    """A feed file that cannot be read: corrupt, truncated or of an unexpected shape."""

    def __init__(self, path: Path | str, detail: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.detail = detail
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {detail}")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Raised in worker processes: pickle by the constructor's own arguments.
        return (self.__class__, (self.path, self.detail), {"line": self.line})

    def __setstate__(self, state: dict[str, object] | None) -> None:
        line = (state or {}).get("line")
        self.line = line if isinstance(line, int) else None
        where = f"{self.path}:{self.line}" if self.line else self.path
        self.args = (f"{where}: {self.detail}",)


class FeedDownloadError(PatchPilotError):
    """An official source could not be reached or answered with an error."""


class InventoryFormatError(InvalidInput):
    """An inventory input (package database, lock file, SBOM) that cannot be parsed (an
    InvalidInput: the server answers 422 with the message, which names file and line)."""

    def __init__(self, path: Path | str, detail: str, *, line: int | None = None) -> None:
        self.path = str(path)
        self.detail = detail
        self.line = line
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {detail}")


class VersionError(PatchPilotError):
    """A version string that neither the scheme library nor the lenient rules can order."""

    def __init__(self, ecosystem: str, version: str, detail: str = "") -> None:
        self.ecosystem = ecosystem
        self.version = version
        super().__init__(f"{ecosystem} version {version!r} cannot be compared"
                         + (f": {detail}" if detail else ""))


class ConfigError(PatchPilotError):
    """A setting that is missing or wrong (database URL, data directory, …)."""
