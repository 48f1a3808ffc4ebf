"""`python -m tgkit.bench ...`: see `tgkit.bench.cli`."""

import sys

from tgkit.bench.cli import main

sys.exit(main())
