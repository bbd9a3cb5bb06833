"""``python -m viewer`` is ``twin-viewer``."""

import sys

from viewer.cli import main

sys.exit(main())
