"""``python -m bench.faults``: see run.py."""

import sys

from bench.faults.run import main

sys.exit(main())
