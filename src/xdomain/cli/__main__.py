"""``python -m xdomain.cli``: the ``xdomain`` command."""

import sys

from xdomain.cli import main

sys.exit(main())
