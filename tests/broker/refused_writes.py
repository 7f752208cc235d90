"""A disk that refuses writes, for real and without root: a process's file-size limit (``RLIMIT_FSIZE``)
set to 0, so the kernel fails every write it makes to a file (EFBIG, which SQLite reports as "disk I/O
error"), while its reads, sockets and pipes work on. Python ignores SIGXFSZ: the process lives on and
sees the error. Lifting the limit is the disk taking writes again."""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def writes_refused(pid: int = 0) -> Iterator[None]:
    """Refuse process ``pid``'s writes to files (0: this process) until the block ends; then allow them again.

    Any process of this user will do (``prlimit``): a coordinator started by the test, or the test itself
    around one call of an adapter."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
