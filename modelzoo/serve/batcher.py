"""Dynamic batching: requests from many clients gathered into one model call, each answer sent back to its caller.

The model runs on one thread of its own: torch releases the GIL in its kernels, so the event loop
keeps reading requests and writing answers while a batch computes, and one thread keeps the model's
caches and its cores to itself. Requests wait in a bounded FIFO (counted in texts): when it is full
a request is turned away at once (:class:`QueueFull`), so memory stays bounded and a client learns
to retry instead of timing out.

Gathering: when the model is idle, the first request waits at most ``wait_s`` for others; when it
was busy, the waiting requests are taken at once (they have waited already). A model call takes
requests in arrival order until about one token budget of text (the budget of predict's batches,
estimated before WordPiece as words + 2 a text); the predictor then sorts the texts by length and
cuts them into batches under that budget itself. ``gather=False`` gives one request per call, the
baseline the load benchmark measures batching against.

A call that fails is retried request by request, so that one bad request fails alone and the
thread lives on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, List, Optional

from modelzoo.serve.metrics import ServeMetrics
from modelzoo.serve.model import Item

Predict = Callable[[List[Item]], List[Any]]


class QueueFull(Exception):
    """The queue cannot take the request's texts now."""

    def __init__(self, waiting: int) -> None:
        super().__init__(waiting)
        self.waiting = waiting


class ModelFailed(Exception):
    """The model raised on this request's texts (a bug, not bad input: inputs are checked before)."""


@dataclass(eq=False)  # a job is itself: the queue finds it by identity
class _Job:
    items: List[Item]
    size: int
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(
        self, predict: Predict, token_budget: int, max_queue: int, wait_s: float, metrics: ServeMetrics, gather: bool = True
    ) -> None:
        self.predict = predict
        self.token_budget = token_budget
        self.max_queue = max_queue
        self.wait_s = wait_s
        self.gather = gather
        self.metrics = metrics
        self.ready = threading.Event()
        self._jobs: Deque[_Job] = deque()
        self._queued = 0  # texts in _jobs
        self._queued_size = 0
        self._stopping = False
        self._condition = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def start(self, warm_up: List[Item]) -> None:
        """Start the model thread; it warms the model up on ``warm_up`` before taking requests (``ready``)."""
        self._thread = threading.Thread(target=self._run, args=(warm_up,), name="model", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Let the thread finish what is queued, then end it."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    async def submit(self, items: List[Item], timeout_s: float) -> List[Any]:
        """The results of ``items`` in order; raises :class:`QueueFull`, ``asyncio.TimeoutError`` after
        ``timeout_s`` (the texts then leave the queue if still there) or :class:`ModelFailed`."""
        size = sum(estimated_tokens(text) for text, _ in items)
        job = _Job(items, size, asyncio.get_running_loop().create_future())
        with self._condition:
            if self._queued + len(items) > self.max_queue:
                raise QueueFull(self._queued)
            self._jobs.append(job)
            self._change_queue(job, +1)
            self._condition.notify()
        try:
            return await asyncio.wait_for(job.future, timeout_s)
        except asyncio.TimeoutError:
            with self._condition:
                if job in self._jobs:
                    self._jobs.remove(job)
                    self._change_queue(job, -1)
            raise

    def _change_queue(self, job: _Job, sign: int) -> None:
        self._queued += sign * len(job.items)
        self._queued_size += sign * job.size
        self.metrics.queue_texts.set(self._queued)

    def _run(self, warm_up: List[Item]) -> None:
        self.predict(warm_up)
        self.ready.set()
        while True:
            jobs = self._next_jobs()
            if not jobs:
                return
            self._answer(jobs)

    def _next_jobs(self) -> List[_Job]:
        """The jobs of the next model call (none: stopping with nothing left)."""
        with self._condition:
            while not self._jobs:  # again if the jobs waited for timed out meanwhile
                while not self._jobs and not self._stopping:
                    self._condition.wait()
                if not self._jobs:
                    return []
                deadline = self._jobs[0].arrived + self.wait_s
                while self._jobs and self.gather and not self._stopping and self._queued_size < self.token_budget:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._condition.wait(left)
            jobs = [self._jobs.popleft()]
            size = jobs[0].size
            while self.gather and self._jobs and size + self._jobs[0].size <= self.token_budget:
                size += self._jobs[0].size
                jobs.append(self._jobs.popleft())
            for job in jobs:
                self._change_queue(job, -1)
            return jobs

    def _answer(self, jobs: List[_Job]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            results = self.predict(items)
        except Exception as error:
            if len(jobs) > 1:
                for job in jobs:
                    self._answer([job])
                return
            _settle(jobs[0].future, error=ModelFailed(f"{type(error).__name__}: {error}"))
            return
        self.metrics.batch_texts.observe(len(items))
        self.metrics.sentences.inc(len(items))
        start = 0
        for job in jobs:
            _settle(job.future, results[start : start + len(job.items)])
            start += len(job.items)


def estimated_tokens(text: str) -> int:
    """A text's tokens before WordPiece: its whitespace words (each at least a piece), [CLS] and [SEP]."""
    return len(text.split()) + 2


def _settle(future: asyncio.Future, result: Any = None, error: Optional[BaseException] = None) -> None:
    """Hand a result to the caller's event loop (unless the caller has timed out and gone)."""

    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    future.get_loop().call_soon_threadsafe(settle)
