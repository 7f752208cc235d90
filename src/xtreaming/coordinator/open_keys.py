"""One message per key: the keys of a queue's messages read and not finished yet, and the message holding each.

A queue with ``WorkSettings.one_per_key`` admits a message read from its log only when no other message
with its key is pending (in the read-ahead, or waiting for a retry) or running; otherwise the message is
a duplicate of the one holding the key, and is finished at once without running. The key is let go when
its holder finishes (ok or dead): a later message with it is new work (a portfolio loaded again after the
first load was done). Messages without a key (None or empty) are never duplicates.

Memory is bounded as the queue's is: one entry per message read and not finished, which the read-ahead
and the tasks in flight bound; the backlog in the log is never looked at.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Sequence
from operator import is_, itemgetter
from typing import NamedTuple

from xtreaming.coordinator.core.pending import PendingMessage


class Duplicate(NamedTuple):
    """A message read while ``holder`` (pending or running) had its key; None: a message in flight since
    before the queue took one message per key, whose position is not known."""

    entry: PendingMessage
    holder: PendingMessage | None


class OpenKeys:
    """The keys of one queue's unfinished messages (see the module docstring). Not thread-safe: the
    coordinator's lock guards it with the rest of the queue."""

    __slots__ = ("_holders",)

    def __init__(self) -> None:
        self._holders: dict[bytes, PendingMessage | None] = {}

    @classmethod
    def of(cls, pending: Iterable[PendingMessage], keys_in_flight: Collection[bytes]) -> OpenKeys:
        """The open keys of a queue that starts taking one message per key with messages already read: each
        key in flight, then each pending message's key (the first in lease order holds it). Those in flight
        are held by an unknown message: the first of its key to finish lets it go."""
        opened = cls()
        holders = opened._holders
        holders.update(dict.fromkeys(keys_in_flight))
        for entry in pending:
            if entry.key:
                holders.setdefault(entry.key, entry)
        return opened

    def __len__(self) -> int:
        return len(self._holders)

    def holds(self, key: bytes) -> bool:
        return key in self._holders

    def admit(self, entries: Sequence[PendingMessage]) -> tuple[Sequence[PendingMessage], list[Duplicate]]:
        """Split ``entries``, read in log order, into those admitted (their keys now held by them; keyless
        ones too) and the duplicates of a message holding their key, an earlier one of ``entries`` included."""
        holders = self._holders
        keys = [entry.key for entry in entries]
        if all(keys) and holders.keys().isdisjoint(keys):  # the usual case, at C speed: every key new
            size = len(holders)
            holders.update(zip(keys, entries, strict=True))  # type: ignore[arg-type]  # all(keys): no None among them
            if len(holders) - size == len(entries):
                return entries, []
            for key in keys:  # a key twice among ``entries``: undone, then one by one
                holders.pop(key, None)  # type: ignore[arg-type]
        admitted: list[PendingMessage] = []
        duplicates: list[Duplicate] = []
        for entry in entries:
            key = entry.key
            if key:
                holder = holders.setdefault(key, entry)
                if holder is not entry:
                    duplicates.append(Duplicate(entry, holder))
                    continue
            admitted.append(entry)
        return admitted, duplicates

    def hold(self, entry: PendingMessage) -> None:
        """Hold ``entry``'s key unless a message holds it already: ``entry`` runs or waits anyway (a task's
        message read back after a restart, leased before it; a retry waiting since)."""
        if entry.key:
            self._holders.setdefault(entry.key, entry)

    def close(self, finished: Sequence[PendingMessage]) -> None:
        """Let go of the keys ``finished`` held (a finished message that holds no key changes nothing)."""
        holders = self._holders
        keys = [message.key for message in finished]
        try:  # the usual case, at C speed: each message holds its key (the very object admitted)
            held = itemgetter(*keys)(holders) if len(keys) > 1 else (holders[keys[0]],)  # type: ignore[index]
        except (KeyError, IndexError):
            held = ()
        if held and all(map(is_, held, finished)):
            deque(map(holders.__delitem__, keys), maxlen=0)  # type: ignore[arg-type]
            return
        for message in finished:
            key = message.key
            if key is not None and key in holders:
                holder = holders[key]
                if holder is None or holder.order == message.order:
                    del holders[key]
