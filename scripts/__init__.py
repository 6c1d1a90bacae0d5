"""Development tooling: `make run` and the redis-server finder the tests share."""
