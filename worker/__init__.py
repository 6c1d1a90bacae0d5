"""The lightsms-queue Celery worker: `celery -A worker worker`, `celery -A worker beat`."""

from .celery_app import app

__all__ = ["app"]
