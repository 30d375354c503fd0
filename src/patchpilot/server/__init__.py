"""The management server: the HTTP API (and, later, the dashboard pages)."""
