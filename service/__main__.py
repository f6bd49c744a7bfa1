"""``python -m service ...`` is the ``forge`` command."""
from .cli import main

raise SystemExit(main())
