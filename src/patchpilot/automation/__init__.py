"""Playbooks: react to finding events (trigger -> CEL condition -> actions) through an
outbox delivered exactly once per (playbook, event, action)."""
