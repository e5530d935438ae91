"""``python -m loomcore`` runs the ``loom`` command."""

from ._cli import main

raise SystemExit(main())
