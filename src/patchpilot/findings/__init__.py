"""Findings: what the matcher found, with every field a scanner report carries."""
