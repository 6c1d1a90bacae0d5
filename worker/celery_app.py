"""The Celery app: `celery -A worker worker|beat|flower`. Configured lazily from the settings."""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any

import click
from celery import Celery, signals

from core.contract import (
    MAINTENANCE_QUEUE,
    MOVE_DUE_TASK,
    POLL_INCOMING_TASK,
    POLL_QUEUE,
    POLL_STATUS_TASK,
    QUEUES,
    SWEEP_TASK,
)
from core.logs import LOG_FORMATS, configure_logging
from core.settings import ConfigError, Settings, get_settings, load_core_settings
from producers.celery_client import celery_config

from .kombu_fixes import tolerate_detached_transport
from .upkeep import UpkeepStep


def worker_config(settings: Settings) -> dict[str, Any]:
    conf = celery_config(settings)
    if settings.broker_on_redis:
        # The store, not the broker, knows what is yet to be sent: a task lost with a killed worker
        # leaves its messages QUEUED, and the sweeper gives them a task again (after
        # LIGHTSMS_REQUEUE_AFTER, or once a backlog has drained; a claim never sends one twice).
        # kombu's emulated acks on Redis would add eight commands a task and bring the task back an
        # hour later, as a duplicate.
        conf["broker_transport_options"] = {"ack_emulation": False, **settings.broker_transport_options}
    conf.update(
        task_queues=(*QUEUES, MAINTENANCE_QUEUE, POLL_QUEUE),
        task_routes={
            MOVE_DUE_TASK: {"queue": MAINTENANCE_QUEUE.name},
            SWEEP_TASK: {"queue": MAINTENANCE_QUEUE.name},
            POLL_INCOMING_TASK: {"queue": POLL_QUEUE.name},
            POLL_STATUS_TASK: {"queue": POLL_QUEUE.name},
        },
        # At-least-once delivery; the QUEUED -> SENDING compare-and-set makes it at-most-once sending.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Threads suit I/O-bound HTTP calls. No Celery time limits: a batch may outlast a lease (the
        # lease keeper renews it), and a limit that interrupted a send mid-request (prefork, gevent)
        # would only turn its messages UNKNOWN. The task bounds itself: a deadline per request, a
        # bounded retry window, a bounded limiter wait.
        worker_pool="threads",
        worker_concurrency=settings.lightsms_worker_concurrency,
        # Flower switches task events on while it runs; off otherwise, they cost ~20% throughput.
        worker_send_task_events=False,
        # RedBeat that survives Redis outages and reads REDIS_URL from the settings, never from this config
        # (Celery's config views would show a redbeat_redis_url with its password): see worker/beat.py.
        beat_scheduler="worker.beat:ResilientRedBeatScheduler",
        redbeat_key_prefix="sms:redbeat:",
        # For beat's redis.Redis (worker/beat.py adds a short retry): a Redis that stops answering must not hang beat.
        redbeat_redis_options={"socket_connect_timeout": 5, "socket_timeout": 5},
        redbeat_lock_timeout=max(30, int(settings.lightsms_sweep_interval * 5)),
        beat_max_loop_interval=1,
        beat_schedule={
            "move-due": {
                "task": MOVE_DUE_TASK,
                "schedule": settings.lightsms_due_interval,
                "options": {"expires": settings.lightsms_due_interval * 5},
            },
            "sweep": {
                "task": SWEEP_TASK,
                "schedule": settings.lightsms_sweep_interval,
                "options": {"expires": settings.lightsms_sweep_interval * 2},
            },
            # A poll tick that waited longer than its interval is the next tick's work: expired.
            "poll-incoming": {
                "task": POLL_INCOMING_TASK,
                "schedule": settings.lightsms_incoming_interval,
                "options": {"expires": settings.lightsms_incoming_interval},
            },
            "poll-status": {
                "task": POLL_STATUS_TASK,
                "schedule": settings.lightsms_status_interval,
                "options": {"expires": settings.lightsms_status_interval},
            },
        },
    )
    return conf


def _config_or_exit() -> dict[str, Any]:
    try:
        return worker_config(get_settings())
    except ConfigError as exc:
        # One line naming the variable, not a traceback through Celery's loader.
        print(f"lightsms-queue: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


_chosen_log_format: list[str] = []


def _remember_log_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    # Parsed before the worker or beat starts, so the setup_logging handler below sees it.
    if value:
        _chosen_log_format[:] = [value]
    return value


@signals.worker_ready.connect
def _freeze_what_startup_loaded(**_: Any) -> None:
    """What the worker loaded to start (Celery, kombu, phonenumbers' metadata ...) lives as long as
    the process: kept out of the collector's full passes, which stop every thread of the process
    (30-40 ms each on this machine's bench), so that requests leave on time for their slots."""
    gc.freeze()


@signals.setup_logging.connect
def _setup_logging(loglevel: int | str | None = None, logfile: str | None = None, **_: Any) -> None:
    """Our handler instead of Celery's: json or text, ids bound on each line, numbers masked."""
    if _chosen_log_format:
        log_format = _chosen_log_format[0]
    else:
        try:
            log_format = load_core_settings().lightsms_log_format
        except ConfigError:
            log_format = "text"  # the configuration error itself is reported when the app loads
    configure_logging(log_format=log_format, level=loglevel or "INFO", logfile=logfile or None)
    quiet_per_task_lines(loglevel or "INFO")


# Celery's lines for every task ("Task ... received", "... succeeded in"): two records for each
# message sent, 6 % of a worker's CPU in the bench's single sends (py-spy). Shown at DEBUG; a task
# that fails is still logged (ERROR) at every level.
PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy")


def quiet_per_task_lines(level: int | str) -> None:
    numeric = level if isinstance(level, int) else logging.getLevelName(str(level).upper())
    quiet = not isinstance(numeric, int) or numeric > logging.DEBUG
    for name in PER_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if quiet else logging.NOTSET)


FLOWER_AUTH_OPTIONS = ("--basic-auth", "--basic_auth", "--auth")
# Celery's global options that take a value (`celery -A worker flower`, `celery --app worker flower`).
_VALUED = ("-A", "--app", "-b", "--broker", "--result-backend", "--loader", "--config", "--workdir")


def _subcommand(argv: list[str]) -> str | None:
    """The celery subcommand in argv (`worker`, `beat`, `flower` ...), skipping the global options."""
    args = iter(argv[1:])
    for arg in args:
        if arg in _VALUED:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def refuse_flower_without_auth(argv: list[str], environ: dict[str, str]) -> None:
    """`celery -A worker flower` never opens without a password: FLOWER_BASIC_AUTH or --basic-auth
    (or Flower's OAuth, --auth / FLOWER_AUTH, or a config file of one's own)."""
    if _subcommand(argv) != "flower":
        return
    if environ.get("FLOWER_BASIC_AUTH") or environ.get("FLOWER_AUTH"):
        return
    if any(arg.split("=", 1)[0] in FLOWER_AUTH_OPTIONS for arg in argv):
        return
    print("lightsms-queue: Flower needs a password: set FLOWER_BASIC_AUTH=user:password (or --basic-auth)",
          file=sys.stderr, flush=True)  # fmt: skip
    raise SystemExit(2)


def make_app() -> Celery:
    refuse_flower_without_auth(sys.argv, dict(os.environ))
    tolerate_detached_transport()
    app = Celery("lightsms-queue", include=["worker.tasks"])
    app.steps["worker"].add(UpkeepStep)
    for command in ("worker", "beat"):
        app.user_options[command].add(click.Option(
            ["--log-format"], type=click.Choice(LOG_FORMATS), callback=_remember_log_format, expose_value=False,
            help="json or text (default LIGHTSMS_LOG_FORMAT)",
        ))  # fmt: skip
    # Evaluated on first use of the config, not at import: settings are read at start-up.
    app.add_defaults(_config_or_exit)
    return app


app = make_app()
