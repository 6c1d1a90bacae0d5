"""Moved to devtools.ports (the benchmarks use it too); this module is that same module under its old name."""

import sys

from devtools import ports

# The same module object, not a copy: monkeypatching a name here patches what devtools' code uses.
sys.modules[__name__] = ports
