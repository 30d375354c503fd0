"""The management server: the HTTP API (``api/``) and the dashboard pages (``web/``)."""
