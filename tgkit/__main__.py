"""`python -m tgkit run|sweep|batch ...`: see `tgkit.study.cli`."""

import sys

from tgkit.study.cli import main

sys.exit(main())
