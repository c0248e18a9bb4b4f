"""``python -m cli``: the ``beaver`` command."""

import sys

from cli.main import main

sys.exit(main())
