"""Scans: the job queue and its workers, schedules, maintenance windows, sweeps."""
