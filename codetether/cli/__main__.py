"""``python -m codetether.cli``: the ``codetether`` command without the console script
(how ``codetether dev`` starts its worker and API processes)."""

from codetether.cli import main

main()
