"""``python -m dsml``: see dsml/cli/app.py."""

import sys

from dsml.cli import main

sys.exit(main())
