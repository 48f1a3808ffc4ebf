import sys

from tgkit.cli import main

sys.exit(main())
