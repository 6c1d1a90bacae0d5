import random

from worker.policy import RetryPolicy


def test_backoff_grows_exponentially_within_jitter_and_is_capped():
    policy = RetryPolicy(max_attempts=5, backoff_base=2.0, backoff_max=20.0)
    rand = random.Random(7)
    for attempt, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 20.0), (9, 20.0)]:
        for _ in range(50):
            delay = policy.backoff(attempt, rand=rand)
            assert ceiling / 2 <= delay <= ceiling


def test_budget_is_spent_at_max_attempts():
    policy = RetryPolicy(max_attempts=3, backoff_base=1.0, backoff_max=10.0)
    assert not policy.spent(2)
    assert policy.spent(3)
