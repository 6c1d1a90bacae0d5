"""A LightSMS-compatible HTTP server for development, demos, tests and benchmarks.

    with run_in_thread(SimConfig(login="demo", api_key="demo-key")) as sim:
        sim.base_url   # http://127.0.0.1:PORT/external/get/
        sim.admin_url  # http://127.0.0.1:PORT/_sim/
"""

from simulator.config import SimConfig
from simulator.server import Simulator, run_in_thread

__all__ = ["SimConfig", "Simulator", "run_in_thread"]
