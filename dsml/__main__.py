"""``python -m dsml``: see dsml/cli/."""

import sys

from dsml.cli import main

sys.exit(main())
