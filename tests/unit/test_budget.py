"""The sweeper's poll rate budget."""

from service.workers.budget import RateBudget


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_full_bucket_allows_one_seconds_worth_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    budget = RateBudget(10, clock=clock)
    assert budget.available() == 10
    budget.spend(10)
    assert budget.available() == 0
    assert abs(budget.seconds_until_one() - 0.1) < 1e-9
    clock.t = 0.35
    assert budget.available() == 3
    clock.t = 100
    assert budget.available() == 10  # never more than the burst


def test_an_outage_backlog_drains_at_the_rate_not_at_once() -> None:
    clock = FakeClock()
    budget = RateBudget(5, clock=clock)
    polled = 0
    for step in range(40):  # 4 s in 100 ms steps, 1000 overdue jobs waiting
        clock.t = step * 0.1
        n = budget.available()
        budget.spend(n)
        polled += n
    assert polled <= 5 + 5 * 4
