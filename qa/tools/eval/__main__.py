"""``python -m qa.tools.eval DATASET [--fit]``."""

from qa.tools.eval import cli

raise SystemExit(cli(prog="python -m qa.tools.eval"))
