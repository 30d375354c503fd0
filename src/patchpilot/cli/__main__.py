"""``python -m patchpilot.cli``: the same as the ``patchpilot`` console script."""

from patchpilot.cli import main

main()
