"""The dashboard's pages: one module per page, and the table of their routers.

``login`` (sign-in, sign-out, the language), ``overview``, ``findings`` (the list),
``finding`` (one finding and its triage form), ``assets`` (the list), ``asset`` (one
asset), ``assets_import`` (a CMDB export), ``assets_upload`` (an SBOM or lock file),
``devices`` (network devices, identified or not),
``imports`` (third-party scanner reports: upload, progress, history),
``plan`` (the patch plan and its downloads), ``playbooks`` (the playbooks, their editor
with validation and a dry run, the dead letters), ``schedules`` (scan schedules, maintenance
windows and blackouts), ``sweeps`` (the list and the form that starts one), ``sweep`` (one
sweep, live), ``reports``, ``users`` (who may sign in, their roles and scopes).

Thin routes: each reads the request, calls the stages' functions (queries and changes, no
SQL here) and renders a template with ``web.render``.  Every page needs a session
(``/login`` otherwise); roles as in the API: viewers read, analysts triage, upload and start
sweeps, admins import CMDB exports, change schedules and windows, and manage users.  None is
in the OpenAPI schema: the API is ``/api``, these are pages.  A new page is a module here
and a line in :data:`ROUTERS`.
"""

from __future__ import annotations

from patchpilot.automation import outbox
from patchpilot.findings import phrases
from patchpilot.findings.model import MATCHER, STATES
from patchpilot.importers.apply import DONE, DUPLICATE, FAILED, QUEUED, RUNNING
from patchpilot.reports import jobs as report_jobs
from patchpilot.reports.overview import SEVERITIES
from patchpilot.scans.schedules import BLACKOUT, WINDOW
from patchpilot.scoring import reasons
from patchpilot.server.security import Role
from patchpilot.server.web.pages import (
    asset,
    assets,
    assets_import,
    assets_upload,
    devices,
    finding,
    findings,
    imports,
    login,
    overview,
    plan,
    playbooks,
    reports,
    schedules,
    sweep,
    sweeps,
    users,
)

# The one table of the dashboard's pages, included by ``web.mount`` in this order.  The
# CMDB import and the upload form precede the asset page: /assets/import and
# /assets/upload would else be taken by /assets/{asset_id} (routes match in the order
# they were added).
ROUTERS = (login.router, overview.router, findings.router, finding.router,
           assets_import.router, assets_upload.router, assets.router, asset.router,
           devices.router,
           imports.router, plan.router, schedules.router, sweeps.router, sweep.router,
           reports.router, playbooks.router, users.router)

IMPORT_STATES = (QUEUED, RUNNING, DONE, FAILED, DUPLICATE)

# Words the templates translate from data (states, bands, roles, sweep answers): listed so
# the catalogue check (tests/server/web/test_i18n.py) knows every one must be translated.
DATA_MSGIDS = (*STATES, *SEVERITIES, *finding.DECISIONS, *(r.value for r in Role),
               "affected", "not_affected", "unknown", "pending", "confirmed", "unreachable",
               "timed_out", "running", "done", WINDOW, BLACKOUT, "verified",
               *report_jobs.STATES, *IMPORT_STATES, *finding.FIELD_SOURCES, MATCHER,
               *reasons.MSGIDS, *phrases.MSGIDS, *outbox.STATES)
