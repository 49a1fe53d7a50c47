"""``python -m refsmith.cli``: the ``refsmith`` command."""

import sys

from refsmith.cli.commands import main

sys.exit(main())
