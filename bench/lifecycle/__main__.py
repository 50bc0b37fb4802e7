"""``python -m bench.lifecycle``: see run.py."""

import sys

from bench.lifecycle.run import main

sys.exit(main())
