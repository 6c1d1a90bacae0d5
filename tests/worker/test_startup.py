"""Invalid configuration stops the worker at start-up with one line naming the variable."""

from __future__ import annotations

import os
import subprocess

from tests.support.processes import venv_executable


def test_a_bad_setting_stops_the_worker_with_one_line():
    env = {**os.environ, "LIGHTSMS_BASE_URL": "http://127.0.0.1:9/external/get/", "LIGHTSMS_BATCH_SIZE": "many"}
    result = subprocess.run([venv_executable("celery"), "-A", "worker", "worker"], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lightsms-queue: configuration error: LIGHTSMS_BATCH_SIZE:")


def test_a_broker_url_without_a_scheme_stops_the_worker_instead_of_amqp_on_localhost():
    # Celery would read "10.9.8.7:6399" as no URL at all and connect to amqp://localhost, silently.
    env = {**os.environ, "LIGHTSMS_BASE_URL": "http://127.0.0.1:9/external/get/", "CELERY_BROKER_URL": "10.9.8.7:6399"}
    result = subprocess.run([venv_executable("celery"), "-A", "worker", "worker"], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lightsms-queue: configuration error: CELERY_BROKER_URL:")
    assert "10.9.8.7" not in lines[0]
