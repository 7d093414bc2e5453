"""``python -m supportgate`` runs the CLI."""

from __future__ import annotations

from supportgate.cli import main

main()
