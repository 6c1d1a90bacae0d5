"""The lightsms-queue Celery worker: `celery -A worker worker`, `celery -A worker beat`.

The Celery app (celery_app.py) and its tasks (tasks.py); sending a batch (sending.py, outcomes.py,
batching.py, policy.py) under the global limiter (limiter.py) and renewed leases (leases.py); upkeep
(maintenance.py: due mover, sweeper, pause probe) on a thread of its own (upkeep.py); RedBeat that
rides out Redis outages (beat.py). Nothing imports this package but Celery's command line (and tests).
"""

from .celery_app import app

__all__ = ["app"]
