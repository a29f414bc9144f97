"""``python -m hlm``: the command line."""

import sys

from hlm.cli import main

sys.exit(main())
