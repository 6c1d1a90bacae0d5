"""Development tooling shared by the tests and the benchmarks: real Redis servers, the simulator as a
process, managed child processes (Celery worker and beat), polling, free ports, and a whole sending
stack. Never imported by production code; tests/support re-exports these under its old names.
"""
