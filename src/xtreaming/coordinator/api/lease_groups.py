"""Lease requests settled together: a group commit of the farms' requests that arrive while one is settled.

Every lease request settles its farm's finished tasks and leases its idle slots in a store transaction whose
results are appended to the log first. Under many farms most of that cost is per transaction (its begin and
commit, an append per result topic, a ledger row per partition), not per task. So requests wait on the event
loop, costing nothing, while a group is settled on a worker thread; the requests that arrived meanwhile are
then settled as the next group, in one transaction (``Coordinator.settle_and_lease_together``). A lone request
is settled at once, as a group of one: nothing waits for company.

One group at a time per app, on a thread of its own: each takes the coordinator's lock, so a second thread would
only wait on it; and handing a group to a thread that waits for nothing else costs a fraction of a worker thread
taken from the event loop's shared pool under its limiter, which every lease request paid (measured).
A request refused (a farm it may not act for, a slot its farm lacks) is answered its refusal, as alone; a
transaction that fails fails its whole group, and each farm sends its request again. A caller that goes away
leaves its request in its group: it is settled (its farm reports the same again, answered idempotently).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

Ask = TypeVar("Ask")
Answer = TypeVar("Answer")

#: The most requests settled in one group: each carries at most 64 results.
LARGEST_GROUP: Final = 32


class Groups(Generic[Ask, Answer]):
    """Requests served in groups by ``serve`` (an answer, or an exception, per request), one group at a time."""

    def __init__(self, serve: Callable[[Sequence[Ask]], Sequence[Answer | BaseException]]) -> None:
        self._serve = serve
        self._waiting: list[tuple[Ask, asyncio.Future[Answer]]] = []
        self._serving: asyncio.Task[None] | None = None
        self._thread = _Thread()

    @property
    def waiting(self) -> int:
        """How many requests wait for the group being served to end, to be served in the next."""
        return len(self._waiting)

    async def answer(self, ask: Ask) -> Answer:
        """``ask``'s answer, once its group is served; raises what ``serve`` answered for it, or raised."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((ask, future))
        if self._serving is None:
            self._serving = asyncio.create_task(self._serve_groups())
        return await future

    async def _serve_groups(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:LARGEST_GROUP], self._waiting[LARGEST_GROUP:]
                try:
                    answers = await self._thread.run(functools.partial(self._serve, [ask for ask, _ in group]))
                except Exception as failed:  # the group's transaction: none of it took effect
                    for _, future in group:
                        _settle(future, failed)
                    continue
                for (_, future), answer in zip(group, answers, strict=True):
                    _settle(future, answer)
        finally:
            self._serving = None


class _Thread:
    """A daemon thread, started at the first call, running what ``run`` is given one call after another."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[object], Callable[[], object]]]
        self._calls = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def run(self, call: Callable[[], Answer]) -> Answer:
        """``call()``'s result (or its exception), called on the thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._calls.put((loop, future, call))
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="xtreaming-lease-groups", daemon=True)
            self._thread.start()
        return await future  # type: ignore[return-value]

    def _serve(self) -> None:
        while True:
            loop, future, call = self._calls.get()
            try:
                answer: object = call()
            except BaseException as exc:  # the caller's to handle, as its own call's
                answer = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for it
                loop.call_soon_threadsafe(_settle, future, answer)


def _settle(future: asyncio.Future[Answer], answer: Answer | BaseException) -> None:
    if future.done():  # its caller went away
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
