"""``python -m bench.printer``: see run.py."""

import sys

from bench.printer.run import main

sys.exit(main())
