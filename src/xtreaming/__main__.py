"""``python -m xtreaming`` runs the CLI."""

from xtreaming.cli import main

if __name__ == "__main__":
    main()
