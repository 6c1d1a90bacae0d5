"""Moved to devtools.redis_server (the benchmarks use it too); this module is that same module under its old name."""

import sys

from devtools import redis_server

# The same module object, not a copy: monkeypatching a name here patches what devtools' code uses.
sys.modules[__name__] = redis_server
