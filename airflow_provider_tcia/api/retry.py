"""When to retry a request and how long to wait: decided once, used by the sync and the async side."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: Statuses worth another try: rate limiting and server-side failures.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter; ``Retry-After`` is honoured (capped)."""

    max_retries: int = 5
    backoff: float = 1.0
    """Base delay in seconds: attempt n waits up to ``backoff * 2**n``."""
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {self.max_retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be >= 0, not {self.backoff}")

    def retryable_status(self, status: int) -> bool:
        return status in RETRYABLE_STATUSES

    def can_retry(self, attempt: int) -> bool:
        """Whether another try may follow try number ``attempt`` (0-based)."""
        return attempt < self.max_retries

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to sleep after failed try ``attempt`` (0-based); always > 0 when backoff > 0."""
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_delay)
            except ValueError:
                pass  # an HTTP-date: fall back to our own backoff
        ceiling = min(self.backoff * (2**attempt), self.max_delay)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry_call(
    policy: RetryPolicy,
    attempt: Callable[[], T],
    *,
    retry_on: tuple[type[BaseException], ...],
    what: str,
    log: logging.Logger | Any,
    sleep: Callable[[float], object] | None = None,
) -> T:
    """Run ``attempt``; when it raises one of ``retry_on``, sleep per ``policy`` and run it again — at most
    ``policy.max_retries`` more times, then the last error propagates.

    For work that must start over as a whole (a body that broke off while being consumed, a download whose
    payload failed verification); status-level retries of a single request live in the hook.

    :param what: what is started over, for the log line (``"reading getSeries"``).
    """
    tries = 0
    while True:
        try:
            return attempt()
        except retry_on as err:
            if not policy.can_retry(tries):
                raise
            delay = policy.delay(tries)
            log.warning("%s; %s again in %.1f s (%d/%d)", err, what, delay, tries + 1, policy.max_retries)
            (sleep or time.sleep)(delay)
            tries += 1
