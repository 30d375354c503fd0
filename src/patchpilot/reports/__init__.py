"""Report builders: executive and technical reports (HTML, PDF), CSV/XLSX exports, patch
plans as Ansible playbooks, scheduled mail, and the output formats of ``patchpilot scan``."""
