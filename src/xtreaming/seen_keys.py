"""Exact "have we seen this key?" for loads of millions of keys, with flat memory.

The keys live in a temporary SQLite table on disk (a B-tree with a small page cache), not in a
Python set: a set of 5 million CPFs costs ~400 MB of RAM, this costs the cache size. Each batch
is one ``INSERT OR IGNORE … RETURNING`` statement, so the per-key work stays in C.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

#: Page cache of the key table; the rest stays in the OS page cache, outside the process's RSS.
CACHE_KIB: Final = 16 * 1024
#: SQLite's default limit of bound parameters per statement is 32,766.
MAX_KEYS_PER_STATEMENT: Final = 32_000


class SeenKeys:
    """A growing set of keys; ``close()`` deletes its file."""

    def __init__(self, directory: str | Path | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix="xtreaming-keys-", suffix=".db", dir=directory)
        os.close(fd)
        self._path = Path(name)
        self._con = sqlite3.connect(self._path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}", "temp_store=FILE"):
            self._con.execute(f"PRAGMA {pragma}")
        self._con.execute("CREATE TABLE seen (key BLOB PRIMARY KEY) WITHOUT ROWID")
        self._statements: dict[int, str] = {}

    def add(self, keys: Sequence[bytes]) -> list[bool]:
        """Add ``keys``; for each, True when it was new (its first occurrence, even within ``keys``)."""
        flags: list[bool] = []
        for start in range(0, len(keys), MAX_KEYS_PER_STATEMENT):
            flags.extend(self._add_chunk(keys[start : start + MAX_KEYS_PER_STATEMENT]))
        return flags

    def _add_chunk(self, keys: Sequence[bytes]) -> list[bool]:
        if not keys:
            return []
        sql = self._statements.get(len(keys))
        if sql is None:
            sql = "INSERT OR IGNORE INTO seen (key) VALUES " + ",".join(["(?)"] * len(keys)) + " RETURNING key"
            self._statements[len(keys)] = sql
        inserted = {key for (key,) in self._con.execute(sql, keys)}
        flags = []
        for key in keys:
            if key in inserted:
                inserted.discard(key)  # later occurrences in this batch are duplicates
                flags.append(True)
            else:
                flags.append(False)
        return flags

    def close(self) -> None:
        self._con.close()
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> SeenKeys:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
