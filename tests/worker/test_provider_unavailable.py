"""A provider that answers nothing it should (a wrong LIGHTSMS_BASE_URL: 404 to every endpoint) is a
configuration problem, not a failure of each message: sending pauses, the messages are kept, and
sending resumes by itself once LightSMS answers."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from core.pause import AccountCircuit
from core.states import State
from tests.support.polling import wait_until
from tests.support.processes import venv_executable
from tests.support.redis_server import RedisServer
from tests.support.sim_process import SimProcess
from tests.worker.stack import Stack, phones


@pytest.fixture
def stack(module_redis: RedisServer, sim_process: SimProcess) -> Iterator[Stack]:
    stack = Stack(module_redis, sim_process)
    stack.reset()
    try:
        yield stack
    finally:
        stack.stop()


def stats_output(stack: Stack) -> str:
    done = subprocess.run([venv_executable("lightsms-queue"), "stats"], env={**stack.env, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    return done.stdout


def test_a_wrong_base_url_pauses_sending_keeps_every_message_and_resumes_when_fixed(stack: Stack):
    wrong = stack.sim.root_url + "/not-the-api/"
    stack.start_worker("wrong", LIGHTSMS_BASE_URL=wrong)
    stack.start_beat()
    ids = stack.producer.send_many(phones(3), "kept, not lost")
    circuit = AccountCircuit(stack.producer.store.redis, login="demo")
    pause = wait_until(circuit.current, timeout=20, message="a wrong base URL never paused sending")
    assert "404" in pause.reason
    assert "yes" in next(line for line in stats_output(stack).splitlines() if line.startswith("paused"))

    # A few sweeps later, nothing has been given up on.
    wait_until(lambda: any(m.state is State.DEFERRED for m in stack.messages(ids)), timeout=10)
    assert {m.state for m in stack.messages(ids)} <= {State.DEFERRED, State.QUEUED}
    assert all(m.attempts == 0 for m in stack.messages(ids))

    # Fixed: a worker with the right URL probes, resumes, and sends each message once.
    stack.processes[0].terminate(timeout=10)
    stack.start_worker("right")
    messages = stack.wait_settled(ids, timeout=40)
    assert {m.state for m in messages} == {State.SENT}
    assert stack.accepted_by_phone() == dict.fromkeys(phones(3), 1)
    assert circuit.current() is None
