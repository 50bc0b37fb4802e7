"""``python -m bench.latency``: see run.py."""

import sys

from bench.latency.run import main

sys.exit(main())
