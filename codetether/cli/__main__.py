"""``python -m codetether.cli``: the same command as the ``codetether`` script (``codetether dev``
starts its worker and API this way)."""

from codetether.cli import main

main()
