"""``python -m bench.scan``: see run.py."""

import sys

from bench.scan.run import main

sys.exit(main())
