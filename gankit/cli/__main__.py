"""``python -m gankit.cli`` (torchrun's ``-m gankit.cli train ...``)."""

from gankit.cli import main

raise SystemExit(main())
