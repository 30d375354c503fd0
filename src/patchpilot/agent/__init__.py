"""The agent: enrols once, then polls the server for jobs, collects, uploads, spools."""
