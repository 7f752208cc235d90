"""One message per key, on disk: per topic, each key's holder and the messages judged duplicates of a holder
and not finished yet.

A key's row names the last message that held it. Whether that one is still unfinished is the ledger's to
say (``judge`` asks), so a holder finishing costs nothing here, except while copies written before it
finished are still to be judged: then it records where in the log it let go (``release``). The rows of a
topic whose every message is finished are dropped together, a few at a time (``renew``, ``purge``).

A private temporary SQLite database (deleted when its connection closes, or with the process): the index
covers the whole unfinished log of a queue, millions of keys for a large portfolio, and costs the page
cache, not a Python dict per key (see ``seen_keys.py`` for the same trade). Each batch is a few statements,
so the per-key work stays in C. Not thread-safe: the coordinator's lock guards it.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from typing import Final, NamedTuple

from xtreaming.coordinator.core.pending import PendingMessage

#: Page cache of the index; the rest stays in the OS page cache, outside the process's RSS.
CACHE_KIB: Final = 16 * 1024
#: Rows per multi-row INSERT: 4 parameters each, under SQLite's default limit of 32,766 per statement.
ROWS_PER_STATEMENT: Final = 8_000

#: A message's position in its topic: (partition, offset).
Position = tuple[int, int]


class Duplicate(NamedTuple):
    """A message whose key ``holder`` held, unfinished, when this one was scouted: finished without running."""

    entry: PendingMessage
    holder: Position


class KeyIndex:
    """Holders and duplicates by topic (see the module docstring); ``close()`` deletes the database."""

    __slots__ = ("_con", "_ids", "_inserts", "_purging", "_topics")

    def __init__(self) -> None:
        # "": a private on-disk database that SQLite deletes itself; used under the coordinator's lock,
        # from whichever thread holds it.
        self._con = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}", "temp_store=FILE"):
            self._con.execute(f"PRAGMA {pragma}")
        self._con.execute(
            "CREATE TABLE holders (topic INTEGER, key BLOB, partition INTEGER, offset INTEGER, released_at INTEGER,"
            " PRIMARY KEY (topic, key)) WITHOUT ROWID"
        )
        self._con.execute(
            "CREATE TABLE duplicates (topic INTEGER, partition INTEGER, offset INTEGER,"
            " holder_partition INTEGER, holder_offset INTEGER, PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID"
        )
        self._topics: dict[str, int] = {}
        self._ids = count()  # never reused: a topic renewed gets a new id while its old rows are purged
        self._inserts: dict[int, str] = {}
        #: Topic ids whose rows are deleted a few at a time (``purge``), oldest first.
        self._purging: deque[int] = deque()

    def _topic(self, topic: str) -> int:
        topic_id = self._topics.get(topic)
        if topic_id is None:
            topic_id = self._topics[topic] = next(self._ids)
        return topic_id

    def judge(
        self,
        topic: str,
        partition: int,
        keyed: Sequence[tuple[int, bytes]],
        read_from: int,
        is_finished: Callable[[int, int], bool],
    ) -> int:
        """Judge ``keyed`` (offset, key) of one partition, in log order and none finished: each becomes its
        key's holder when no unfinished message holds it, else is a duplicate of the holder, recorded for
        ``take`` when its offset is at or past ``read_from`` (messages before it were read already, and run
        anyway). A holder is finished when ``is_finished(partition, offset)`` says so: it let its key go
        before ``keyed`` were written, unless it was let go at a later log position (``release``): it still
        holds its key for the messages of its partition before that. Returns how many duplicates were recorded."""
        topic_id = self._topic(topic)
        con = self._con
        inserted: set[bytes] = set()
        for start in range(0, len(keyed), ROWS_PER_STATEMENT):
            chunk = keyed[start : start + ROWS_PER_STATEMENT]
            sql = self._inserts.get(len(chunk))
            if sql is None:
                rows = ",".join(["(?,?,?,?,NULL)"] * len(chunk))
                sql = self._inserts[len(chunk)] = f"INSERT OR IGNORE INTO holders VALUES {rows} RETURNING key"
            parameters = [value for offset, key in chunk for value in (topic_id, key, partition, offset)]
            inserted.update(key for (key,) in con.execute(sql, parameters))
        holders = self._holders_of(topic_id, {key for _, key in keyed} - inserted)
        duplicates, renewed = [], []
        for offset, key in keyed:
            if key in inserted:  # its first occurrence holds it now
                inserted.discard(key)
                holders[key] = (partition, offset, None)
                continue
            held_in, held_at, released_at = holders[key]
            if (released_at is None and not is_finished(held_in, held_at)) or (
                released_at is not None and held_in == partition and offset < released_at
            ):
                if offset >= read_from:
                    duplicates.append((topic_id, partition, offset, held_in, held_at))
            else:  # let go before this one was written: it holds the key now
                holders[key] = (partition, offset, None)
                renewed.append((partition, offset, topic_id, key))
        with self._transaction():
            con.executemany(
                "UPDATE holders SET partition = ?, offset = ?, released_at = NULL WHERE topic = ? AND key = ?", renewed
            )
            con.executemany("INSERT OR REPLACE INTO duplicates VALUES (?, ?, ?, ?, ?)", duplicates)
        return len(duplicates)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Several statements in one transaction: each on its own would write its pages to the file."""
        self._con.execute("BEGIN")
        try:
            yield
        finally:
            self._con.execute("COMMIT")

    def _holders_of(self, topic_id: int, keys: set[bytes]) -> dict[bytes, tuple[int, int, int | None]]:
        """The holder of each of ``keys`` (all held): partition, offset, and where it was let go (None: not)."""
        holders: dict[bytes, tuple[int, int, int | None]] = {}
        listed = list(keys)
        for start in range(0, len(listed), ROWS_PER_STATEMENT):
            chunk = listed[start : start + ROWS_PER_STATEMENT]
            rows = self._con.execute(
                "SELECT key, partition, offset, released_at FROM holders"
                f" WHERE topic = ? AND key IN ({','.join('?' * len(chunk))})",
                (topic_id, *chunk),
            )
            holders.update((key, (partition, offset, released_at)) for key, partition, offset, released_at in rows)
        return holders

    def take(self, topic: str, partition: int, first: int, last: int) -> dict[int, Position]:
        """The duplicates judged among offsets ``first..last`` of a partition, each with its holder, now
        forgotten (their reader finishes them)."""
        topic_id = self._topics.get(topic)
        if topic_id is None:
            return {}
        rows = self._con.execute(
            "DELETE FROM duplicates WHERE topic = ? AND partition = ? AND offset BETWEEN ? AND ?"
            " RETURNING offset, holder_partition, holder_offset",
            (topic_id, partition, first, last),
        )
        return {offset: (holder_partition, holder_offset) for offset, holder_partition, holder_offset in rows}

    def release(self, topic: str, partition: int, finished: Iterable[PendingMessage], at: int) -> None:
        """Let the keys ``finished`` messages of ``partition`` held go from log position ``at`` on (a finished
        message holding none changes nothing): a copy before ``at``, judged later, was written while its
        holder was unfinished, and is a duplicate still. Needed only for the copies not judged yet: where
        every message written is judged, ``judge`` asks ``is_finished`` instead."""
        topic_id = self._topics.get(topic)
        if topic_id is None:
            return
        with self._transaction():
            self._con.executemany(
                "UPDATE holders SET released_at = ? WHERE topic = ? AND key = ? AND partition = ? AND offset = ?",
                [(at, topic_id, m.key, partition, m.offset) for m in finished if m.key],
            )

    def renew(self, topic: str) -> None:
        """Start ``topic`` afresh, every message of it finished: its rows (all finished holders) are purged a
        few at a time (``purge``), never all at once."""
        topic_id = self._topics.pop(topic, None)
        if topic_id is not None:
            self._purging.append(topic_id)

    def purge(self, rows: int) -> None:
        """Delete up to ``rows`` rows of the topics renewed (``renew``) or forgotten."""
        if not self._purging:
            return
        topic_id = self._purging[0]
        deleted = self._con.execute(
            "DELETE FROM holders WHERE topic = ? AND key IN (SELECT key FROM holders WHERE topic = ? LIMIT ?)",
            (topic_id, topic_id, rows),
        ).rowcount
        if deleted < rows:
            self._con.execute("DELETE FROM duplicates WHERE topic = ?", (topic_id,))
            self._purging.popleft()

    def forget(self, topic: str) -> None:
        """Drop everything about ``topic`` (it no longer takes one message per key), a few rows at a time."""
        self.renew(topic)

    def close(self) -> None:
        self._con.close()
