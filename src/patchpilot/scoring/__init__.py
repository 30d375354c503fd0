"""Scoring: CVSS bands (and, later, priority, SLA and exploit signals)."""
