"""``python -m fastgd``: the command line."""

from fastgd.cli import main

raise SystemExit(main())
