"""``python -m fraudshop.cli``: the fraudshop command, without the checkout's virtualenv bootstrap."""

import sys

from fraudshop.cli import main

sys.exit(main())
