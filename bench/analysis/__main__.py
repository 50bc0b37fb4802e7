"""``python -m bench.analysis``: see run.py."""

import sys

from bench.analysis.run import main

sys.exit(main())
