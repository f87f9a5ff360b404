"""``python -m bench``: dockyard against CNCF distribution 2.8.2, measured in the same run."""

from bench.cli import main

raise SystemExit(main())
