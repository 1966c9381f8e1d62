"""``python -m dsml``: see dsml/cli/app.py."""

import sys

from dsml.cli import main

if __name__ == "__main__":  # importing this module (a documentation tool does) runs nothing
    sys.exit(main())
