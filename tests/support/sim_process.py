"""Moved to devtools.sim_process (the benchmarks use it too); this module is that same module under its old name."""

import sys

from devtools import sim_process

# The same module object, not a copy: monkeypatching a name here patches what devtools' code uses.
sys.modules[__name__] = sim_process
