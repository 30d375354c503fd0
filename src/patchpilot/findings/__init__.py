"""Findings: what each producer found (the matcher, the host's own updates), with every
field a scanner report carries; ingest, lifecycle, triage, events and queries."""
