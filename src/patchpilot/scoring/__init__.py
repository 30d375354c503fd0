"""Scoring: CVSS bands, priority (matrix or SSVC, with KEV/EPSS exploit signals), SLA."""
