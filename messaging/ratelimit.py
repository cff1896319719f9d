"""Per-connection frame rate limiting: a token bucket and a flood meter."""

import time


class TokenBucket:
    """`rate` tokens per second up to `burst`; `take()` spends one if there is one."""

    def __init__(self, rate: float, burst: float, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FrameLimiter:
    """Allows `rate`/s with bursts of `burst`; reports a flood once refused frames pile up.

    Refused frames fill a second bucket that drains at `rate`/s; when it holds more than
    `flood_after`, the connection is flooding and should be closed (4429).
    """

    def __init__(self, rate: float, burst: int, flood_after: int, clock=time.monotonic):
        self.allowed = TokenBucket(rate, burst, clock)
        self.flood_after = flood_after
        self.refused = 0.0
        self.clock = clock
        self.stamp = clock()

    def allow(self) -> bool:
        if self.allowed.take():
            return True
        now = self.clock()
        self.refused = max(0.0, self.refused - (now - self.stamp) * self.allowed.rate) + 1
        self.stamp = now
        return False

    @property
    def flooding(self) -> bool:
        return self.refused > self.flood_after
