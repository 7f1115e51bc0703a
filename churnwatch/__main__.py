"""``python -m churnwatch`` runs the command line."""

from churnwatch.cli import main

main()
