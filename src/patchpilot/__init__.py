"""PatchPilot: open-source vulnerability management."""

__version__ = "0.1.0"
