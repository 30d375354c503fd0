"""Scoring: priority (matrix or SSVC, with KEV/EPSS exploit signals) and SLA due dates;
the CVSS bands they start from are the knowledge base's (``knowledge.cvss``)."""
