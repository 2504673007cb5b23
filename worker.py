"""The worker's entry at the repository root: ``python worker.py`` runs the same process as
``codetether worker``. The worker itself lives in :mod:`codetether.worker`."""

from codetether.worker import main

if __name__ == "__main__":
    main()
