"""Parse a report with faraday-plugins' Nessus plugin (run by bench_import in the Python
that has faraday-plugins installed): prints seconds, peak RSS and what it made, as JSON.

Standard library only besides faraday-plugins: that interpreter has nothing of ours.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main(path: str) -> None:
    from faraday_plugins.plugins.manager import PluginsManager

    plugin = PluginsManager().get_plugin("Nessus")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    plugin.processReport(path)
    seconds = time.perf_counter() - started
    data = json.loads(plugin.get_json())
    vulns = sum(len(h.get("vulnerabilities", [])) + sum(
        len(s.get("vulnerabilities", [])) for s in h.get("services", []))
        for h in data.get("hosts", []))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "before_mb": before / 1024,
                      "hosts": len(data.get("hosts", [])), "vulns": vulns}))


if __name__ == "__main__":
    main(sys.argv[1])
