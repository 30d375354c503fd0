"""Scans: schedules, maintenance windows, sweeps, re-matching and patch plans."""
