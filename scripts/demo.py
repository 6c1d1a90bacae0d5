"""`make demo`: sample traffic for a running `make run`, so Flower, the CLI and the metrics show something.

Singles, a bulk CSV through `lightsms-queue send-bulk`, scheduled ones, incoming SMS injected into
the simulator (a STOP and a HELP among them, for the keyword consumer), and two provider faults: an
invalid number (FAILED 16) and a burst of 503s (retried, then SENT). Reads the stack's settings the
way any second shell does (.run/stack.env).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from core.settings import ConfigError, load_settings
from devtools.sim_process import SimAdmin
from producers import Producer

BIN = Path(sys.executable).parent


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError:
        settings = None
    base = urlsplit(settings.lightsms_base_url) if settings else None
    if settings is None or base is None or base.hostname not in ("127.0.0.1", "localhost"):
        print("make demo needs `make run` with its simulator running in another shell", file=sys.stderr)
        return 2
    admin = SimAdmin(f"{base.scheme}://{base.netloc}/_sim/")
    producer = Producer(settings)
    try:
        admin.faults(phone_errors={"37060000666": 16})
        singles = [producer.send(f"3706000{i:04d}", f"Your code is {1000 + i}", priority="high") for i in range(5)]
        singles.append(producer.send("37060000666", "This number is refused (16)"))
        print(f"sent {len(singles)} singles, one to a number LightSMS refuses")

        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["phone", "text"])
            writer.writerows([f"3706100{i:04d}", "Winter sale starts today"] for i in range(50))
        subprocess.run([str(BIN / "lightsms-queue"), "send-bulk", file.name, "--key", f"demo-{int(time.time())}"],
                       check=False)  # fmt: skip

        for delay in (20, 40, 60):
            producer.send("37060000100", f"A reminder, {delay} s after the demo started", send_at=time.time() + delay)
        print("scheduled 3 for the next minute")

        admin.faults(http_503_rate=1, count=2, endpoints=["send"])
        producer.send("37060000200", "Sent after two 503s")
        print("a 503 burst: the next send is retried, then SENT")

        admin.incoming([
            {"sender": "37062000001", "phone": "5163251632", "text": "STOP"},
            {"sender": "37062000002", "phone": "5163251632", "text": "HELP"},
            {"sender": "37062000003", "phone": "5163251632", "text": "When does the sale end?"},
            {"sender": "LIGHTSMS", "phone": "5163251632", "text": "An alphanumeric sender: never answered"},
        ])  # fmt: skip
        print("injected 4 incoming SMS (STOP, HELP, a question, an alphanumeric sender)")
        print("watch: lightsms-queue stats | lightsms-queue optout list | Flower | lightsms-queue metrics")
    finally:
        admin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
