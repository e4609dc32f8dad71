"""``python -m femfreq.execute -m MODULE ARGS``: the entry point of processes started over SSH."""

import sys

from femfreq.execute import _remote_main

_remote_main(sys.argv[1:])
