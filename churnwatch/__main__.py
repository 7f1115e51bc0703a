"""``python -m churnwatch`` runs the command line."""

from churnwatch.cli import main

# guarded: a spawned child process (the worker's fold) imports this module again
if __name__ == "__main__":
    main()
