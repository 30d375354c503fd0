"""Settings from the environment (and their defaults).

=========================== ===============================================================
``PATCHPILOT_HOME``          data directory (default ``~/.local/share/patchpilot``)
``PATCHPILOT_DATABASE_URL``  SQLAlchemy URL; default SQLite ``$PATCHPILOT_HOME/patchpilot.db``
``PATCHPILOT_FEEDS_DIR``     read feeds from these folders (``:``-separated) instead of the
                             official sources
``NVD_API_KEY``              optional NVD API key (higher rate limit)
``PATCHPILOT_MAX_UPLOAD_MB`` largest upload the server reads (inventories, CMDB exports,
                             SBOM / lock files), in MiB (default 64)
``PATCHPILOT_FEED_UPDATE_INTERVAL``
                             hours between the server's own knowledge-base updates (from
                             ``PATCHPILOT_FEEDS_DIR`` when set, else the official
                             sources); ``0`` or ``off`` never (air-gapped); default 24
=========================== ===============================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from patchpilot.errors import ConfigError

# Far above a real host's inventory (a few MB) or a container image's syft SBOM (tens of
# MB), far below what would hurt a small server.
DEFAULT_MAX_UPLOAD_MB = 64
# Advisories and KEV entries appear daily; a day-old knowledge base is what a nightly cron
# job gave before the server updated itself.
DEFAULT_FEED_UPDATE_HOURS = 24.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings of one process."""

    home: Path
    database_url: str
    feeds_dirs: tuple[Path, ...]  # empty: download from the official sources
    # The largest upload the server reads, in bytes: every body is bounded while it streams
    # (server/limits.py), so a client cannot make the server hold more than this.
    max_upload: int = DEFAULT_MAX_UPLOAD_MB << 20
    # Hours between the server's own knowledge-base updates; None: never (air-gapped
    # installs that load feeds by hand with `patchpilot db update --from`).
    feed_update_hours: float | None = DEFAULT_FEED_UPDATE_HOURS

    @property
    def cache_dir(self) -> Path:
        """Where downloaded feed files are kept between updates."""
        return self.home / "feeds"


def default_home() -> Path:
    """``$PATCHPILOT_HOME`` or the XDG data directory."""
    env = os.environ.get("PATCHPILOT_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "patchpilot"


def load_settings() -> Settings:
    """Read the settings from the environment."""
    home = default_home()
    url = os.environ.get("PATCHPILOT_DATABASE_URL") or f"sqlite:///{home / 'patchpilot.db'}"
    feeds = os.environ.get("PATCHPILOT_FEEDS_DIR", "")
    dirs = tuple(Path(p).expanduser() for p in feeds.split(os.pathsep) if p.strip())
    return Settings(home=home, database_url=url, feeds_dirs=dirs,
                    max_upload=_max_upload_mb() << 20,
                    feed_update_hours=_feed_update_hours())


def _max_upload_mb() -> int:
    raw = os.environ.get("PATCHPILOT_MAX_UPLOAD_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_UPLOAD_MB
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"PATCHPILOT_MAX_UPLOAD_MB: {raw!r} is not a whole number of "
                            "MiB (1 or more)")
    return int(raw)


def _feed_update_hours() -> float | None:
    raw = os.environ.get("PATCHPILOT_FEED_UPDATE_INTERVAL", "").strip().lower()
    if not raw:
        return DEFAULT_FEED_UPDATE_HOURS
    if raw == "off":
        return None
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    # nan and inf are floats too, but no interval.
    if not 0 <= hours < 24 * 366:
        raise ConfigError(f"PATCHPILOT_FEED_UPDATE_INTERVAL: {raw!r} is not a number of hours "
                          "(0 or off: never; default 24)")
    return hours or None
