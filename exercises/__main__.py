"""``python -m exercises``: list, check, hint, reset and show solutions of the exercises."""

import sys

from ._checker import main

sys.exit(main())
