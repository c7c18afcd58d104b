"""What one request may ask of the server, and how long it may wait: every bound has a default here.

The bounds keep memory and latency finite whatever clients send: a request body is read only up to
``max_body_bytes``; a request holds at most ``max_inputs`` texts of at most ``max_chars``
characters each; at most ``max_queue`` texts wait for the model, beyond which a request is turned
away at once (503) rather than queued without end; and a request answers within
``request_timeout_s`` or gets a 504. ``batch_wait_ms`` is how long the first request of a batch
may wait for others to join it when the model is idle.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelzoo.common.errors import ParamsError


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 1_048_576
    max_inputs: int = 64
    max_chars: int = 10_000
    max_queue: int = 1024
    request_timeout_s: float = 30.0
    batch_wait_ms: float = 2.0

    def check(self) -> None:
        """One error line for a bound that cannot work, before the model is loaded."""
        for name in ("max_body_bytes", "max_inputs", "max_chars", "max_queue"):
            if getattr(self, name) < 1:
                raise ParamsError(f"--{name} {getattr(self, name)}: at least 1")
        if not self.request_timeout_s > 0:
            raise ParamsError(f"--request_timeout {self.request_timeout_s}: seconds, above 0")
        if not self.batch_wait_ms >= 0:
            raise ParamsError(f"--batch_wait_ms {self.batch_wait_ms}: milliseconds, 0 or more")
        if self.max_queue < self.max_inputs:
            raise ParamsError(
                f"--max_queue {self.max_queue} is below --max_inputs {self.max_inputs}: "
                "a full-size request could never be queued"
            )
