"""The per-connection frame limiter: 20/s with bursts of 50, and flood detection."""

from messaging.ratelimit import FrameLimiter


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_burst_then_steady_rate():
    clock = FakeClock()
    limiter = FrameLimiter(rate=20, burst=50, flood_after=100, clock=clock)
    assert all(limiter.allow() for _ in range(50))
    assert not limiter.allow()
    clock.now += 1.0
    assert sum(limiter.allow() for _ in range(30)) == 20
    for _ in range(100):  # a client just under 20 frames/s is never limited
        clock.now += 0.051
        assert limiter.allow()
    assert not limiter.flooding


def test_slightly_too_fast_is_limited_but_not_a_flood():
    clock = FakeClock()
    limiter = FrameLimiter(rate=20, burst=50, flood_after=100, clock=clock)
    refused = 0
    for _ in range(30 * 60):  # 30 frames/s for a minute
        clock.now += 1 / 30
        refused += not limiter.allow()
    assert refused > 0 and not limiter.flooding


def test_flood_is_detected():
    clock = FakeClock()
    limiter = FrameLimiter(rate=20, burst=50, flood_after=100, clock=clock)
    for _ in range(200):
        clock.now += 0.001
        limiter.allow()
    assert limiter.flooding
