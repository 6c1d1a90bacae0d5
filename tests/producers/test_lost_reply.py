"""A send() whose reply from Redis is lost: redis-py runs the call again, and by then the first run's
task may have been taken and its message sent. The second run must change nothing."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

from core import keys
from core.settings import CoreSettings
from core.states import State
from core.store import Move, Store
from producers.producer import Producer


class ReplyLosingProxy:
    """A TCP proxy in front of redis-server; armed, it swallows the next reply and closes that client
    connection `delay` seconds later (a reply lost on the network)."""

    def __init__(self, port: int, delay: float) -> None:
        self.target, self.delay = port, delay
        self.armed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self.armed.is_set():
                    self.armed.clear()
                    time.sleep(self.delay)
                    for end in (sink, source):  # shutdown: the other pipe's thread still reads from them
                        end.shutdown(socket.SHUT_RDWR)
                        end.close()
                    return
                sink.sendall(data)
        except OSError:
            pass


def test_a_send_run_again_after_its_reply_was_lost_is_sent_once(redis_server, redis_client, monkeypatch):
    proxy = ReplyLosingProxy(redis_server.port, delay=1.0)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{proxy.port}/0")  # the store and the broker
    monkeypatch.setenv("LIGHTSMS_SENDER", "LightSMS")
    producer = Producer(CoreSettings())
    producer.send("37061234567", "warm-up")  # the broker connection is made
    redis_client.delete("sms.normal")

    worker_store = Store(redis_server.client(decode_responses=True), record_ttl=3600)
    sent: list[str] = []
    done = threading.Event()

    def worker() -> None:  # takes each task at once, claims its messages and "sends" them
        while not done.is_set():
            popped = redis_client.brpop(["sms.normal"], timeout=0.2)
            if popped is None:
                continue
            [payload], _, _ = json.loads(base64.b64decode(json.loads(popped[1])["body"]))
            lease = f"L{len(sent)}"
            claim = worker_store.claim_to_send(payload["ids"], lease=lease, lease_seconds=30, pause_key="sms:pause:x")
            for message in claim.messages:
                sent.append(message.id)
                worker_store.apply([Move(message.id, (State.SENDING,), State.SENT, lease=lease)])

    taker = threading.Thread(target=worker)
    taker.start()
    try:
        proxy.armed.set()
        message_id = producer.send("37062345678", "hello")
        deadline = time.monotonic() + 10
        while not sent and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        done.set()
        taker.join()
    assert sent == [message_id]
    assert redis_client.hget(keys.message(message_id), "state") == "SENT"
    assert redis_client.llen("sms.normal") == 0  # no second task


def test_a_send_many_with_repeats_run_again_after_its_reply_was_lost_still_publishes_the_new_task(
    redis_server, redis_client, monkeypatch
):
    proxy = ReplyLosingProxy(redis_server.port, delay=0.2)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{proxy.port}/0")
    monkeypatch.setenv("LIGHTSMS_SENDER", "LightSMS")
    producer = Producer(CoreSettings())
    [first] = producer.send_many(["37061234567"], "hello", idempotency_key="order-7")
    redis_client.delete("sms.normal")
    proxy.armed.set()
    ids = producer.send_many(["37061234567", "37062345678"], "hello", idempotency_key="order-7")
    assert ids[0] == first
    tasks = [json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]["ids"]
             for raw in redis_client.lrange("sms.normal", 0, -1)]  # fmt: skip
    assert tasks == [[ids[1]]]  # the new recipient's task, published after the records
