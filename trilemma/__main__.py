"""``python -m trilemma`` works like the ``trilemma`` command."""

import sys

from trilemma.cli import main

sys.exit(main())
