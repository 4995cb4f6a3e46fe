"""`python -m resumable ...`: the `resumable` command."""

import sys

from .cli import main

sys.exit(main())
