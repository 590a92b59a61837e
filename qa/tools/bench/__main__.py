"""``python -m qa.tools.bench``: the same as ``qa bench`` (and how the benchmark starts its child processes)."""

from qa.tools.bench import cli

raise SystemExit(cli())
