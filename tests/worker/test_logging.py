"""Logs: `--log-format json|text`, the task and message ids bound on each line, no number or text in clear."""

from __future__ import annotations

import json
import logging

import pytest

from core.logs import ContextFilter, bound_message_ids, configure_logging, mask_numbers
from devtools.processes import ManagedProcess, venv_executable
from tests.worker.stack import QUEUES, Stack, phones


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("to 37061234567", "to 370*****567"),
        ("to +37061234567.", "to 370*****567."),
        ("id_sms 4092112510348380960001 stays", "id_sms 4092112510348380960001 stays"),
        ("message d19af65c347f43b09f1e075e293c6b8f stays", "message d19af65c347f43b09f1e075e293c6b8f stays"),
        ("port 6379 and 1234567 stay", "port 6379 and 1234567 stay"),
    ],
)
def test_numbers_standing_alone_are_masked(text, shown):
    assert mask_numbers(text) == shown


def test_a_json_line_carries_the_bound_message_ids_and_masks_numbers(capsys):
    configure_logging(log_format="json")
    try:
        with bound_message_ids(["m1", "m2"]):
            logging.getLogger("lightsms_queue.test").warning("to %s", "37061234567")
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["message"] == "to 370*****567" and line["message_ids"] == "m1,m2" and line["level"] == "WARNING"
    finally:
        logging.getLogger().handlers.clear()


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="json, text|text, json"):
        configure_logging(log_format="xml")


def test_the_filter_never_drops_a_record():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "to %s", ("37061234567",), None)
    assert ContextFilter().filter(record) and record.getMessage() == "to 370*****567"


def test_a_debug_worker_logs_json_with_no_phone_number_or_text(module_redis, sim_process):
    stack = Stack(module_redis, sim_process)
    argv = [venv_executable("celery"), "-A", "worker", "worker", "-n", "logs@%h", "--loglevel=DEBUG", "--log-format",
            "json", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", QUEUES]  # fmt: skip
    worker = ManagedProcess(argv, name="worker-json-logs", env=stack.env, ready=r"ready\.")
    try:
        worker.start()
        worker.wait_ready(timeout=30)
        stack.start_beat()
        recipients = phones(6, start=4242000)
        stack.admin.faults(phone_errors={recipients[0]: 16})
        secret_text = "Quarterly code 9Z7Q-unique-text"
        ids = stack.producer.send_many(recipients, secret_text)
        stack.wait_settled(ids, timeout=30)
    finally:
        worker.terminate(timeout=15)
        stack.stop()
    log = worker.log_path.read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any("ready" in r["message"] for r in records)
    assert any(r["message"].startswith("Task lightsms.send[") and " succeeded in " in r["message"] for r in records)
    assert any(r.get("task_id") and r.get("message_ids") for r in records), "no line names its task and messages"
    assert secret_text not in log and "9Z7Q" not in log
    for phone in recipients:
        assert phone not in log
    assert "demo-key" not in log


def test_tracebacks_are_masked_too(capsys):
    for log_format in ("json", "text"):
        configure_logging(log_format=log_format)
        try:
            try:
                raise ValueError("bad number 37061234567")
            except ValueError:
                logging.getLogger("lightsms_queue.test").exception("it failed")
            err = capsys.readouterr().err
            assert "37061234567" not in err and "370*****567" in err
        finally:
            logging.getLogger().handlers.clear()


def test_a_logfile_gets_the_lines(tmp_path):
    path = tmp_path / "worker.log"
    configure_logging(log_format="json", logfile=str(path))
    try:
        logging.getLogger("lightsms_queue.test").warning("to %s", "37061234567")
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers.clear()
    assert json.loads(path.read_text().splitlines()[-1])["message"] == "to 370*****567"


@pytest.mark.parametrize(
    ("level", "quiet"), [("INFO", True), (logging.INFO, True), ("warning", True), ("DEBUG", False), (5, False)]
)
def test_celery_s_lines_for_every_task_are_kept_for_debug(level, quiet):
    from worker.celery_app import PER_TASK_LOGGERS, quiet_per_task_lines

    try:
        quiet_per_task_lines(level)
        for name in PER_TASK_LOGGERS:
            # WARNING: a failing task (ERROR) is still logged; NOTSET: the worker's own level
            assert logging.getLogger(name).level == (logging.WARNING if quiet else logging.NOTSET)
    finally:
        quiet_per_task_lines("DEBUG")
