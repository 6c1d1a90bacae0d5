"""Moved to devtools.stack (the benchmarks use it too); this module is that same module under its old name."""

import sys

from devtools import stack

sys.modules[__name__] = stack
