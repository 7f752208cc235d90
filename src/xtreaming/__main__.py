"""``python -m xtreaming`` runs the CLI."""

from xtreaming.cli import main

main()
