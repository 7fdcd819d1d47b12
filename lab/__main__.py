"""`python3 -m lab` is `lab/mail-lab`."""

import sys

from lab.cli import main

sys.exit(main())
