"""``python -m clearsight.cli``."""

import sys

from . import main

sys.exit(main())
