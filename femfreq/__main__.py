"""``python -m femfreq`` runs the command line."""

import sys

from femfreq._cli.main import main

sys.exit(main())
