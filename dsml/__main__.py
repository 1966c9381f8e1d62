"""``python -m dsml``: see dsml/cli.py."""

import sys

from dsml.cli import main

sys.exit(main())
