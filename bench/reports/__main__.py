"""``python -m bench.reports``: see run.py."""

import sys

from bench.reports.run import main

sys.exit(main())
