"""Lease requests settled together: a group commit of the farms' requests that arrive while one is settled.

Every lease request settles its farm's finished tasks and leases its idle slots in a store transaction whose
results are appended to the log first. Under many farms most of that cost is per transaction (its begin and
commit, an append per result topic, a ledger row per partition), not per task. So requests wait on the event
loop, costing nothing, while a group is settled on a worker thread; the requests that arrived meanwhile are
then settled as the next group, in one transaction (``Coordinator.settle_and_lease_together``). A lone request
is settled at once, as a group of one: nothing waits for company.

One group at a time per app: each takes the coordinator's lock, so a second thread would only wait on it.
A request refused (a farm it may not act for, a slot its farm lacks) is answered its refusal, as alone; a
transaction that fails fails its whole group, and each farm sends its request again. A caller that goes away
leaves its request in its group: it is settled (its farm reports the same again, answered idempotently).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

import anyio

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
                    answers = await anyio.to_thread.run_sync(self._serve, [ask for ask, _ in group])
                except Exception as failed:  # the group's transaction: none of it took effect
                    for _, future in group:
                        _settle(future, failed)
                    continue
                for (_, future), answer in zip(group, answers, strict=True):
                    _settle(future, answer)
        finally:
            self._serving = None


def _settle(future: asyncio.Future[Answer], answer: Answer | BaseException) -> None:
    if future.done():  # its caller went away
        return
    if isinstance(answer, BaseException):
        future.set_exception(answer)
    else:
        future.set_result(answer)
