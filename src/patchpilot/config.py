"""Settings from the environment (and their defaults).

=========================== ===============================================================
``PATCHPILOT_HOME``          data directory (default ``~/.local/share/patchpilot``)
``PATCHPILOT_DATABASE_URL``  SQLAlchemy URL; default SQLite ``$PATCHPILOT_HOME/patchpilot.db``
``PATCHPILOT_FEEDS_DIR``     read feeds from these folders (``:``-separated) instead of the
                             official sources
``NVD_API_KEY``              optional NVD API key (higher rate limit)
=========================== ===============================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings of one process."""

    home: Path
    database_url: str
    feeds_dirs: tuple[Path, ...]  # empty: download from the official sources

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
    return Settings(home=home, database_url=url, feeds_dirs=dirs)
