"""``python -m bench.farm``: see run.py."""

import sys

from bench.farm.run import main

sys.exit(main())
