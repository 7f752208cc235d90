"""Windows: a job object that kills the farm's workers when the farm ends, however it ends.

A job created with ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`` terminates every process in it when its
last handle closes, and Windows closes a dead process's handles whatever killed it. Only the farm
holds the handle (it is not inheritable). The farm puts itself in the job at start, so every process
it starts (command workers, handler processes) and their descendants are in the job from their first
instruction; should that fail (a job the farm already runs in that forbids it), each worker is put
in the job as it starts instead, which a process it starts in its first instants may escape.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Mapping
from typing import Any, Final

log = logging.getLogger("xtreaming.farm")

#: ``JOBOBJECTINFOCLASS`` of ``JOBOBJECT_EXTENDED_LIMIT_INFORMATION``.
EXTENDED_LIMIT_INFORMATION: Final = 9
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE: Final = 0x2000
#: What ``AssignProcessToJobObject`` needs of a process handle.
PROCESS_SET_QUOTA: Final = 0x0100
PROCESS_TERMINATE: Final = 0x0001


class BasicLimits(ctypes.Structure):
    """``JOBOBJECT_BASIC_LIMIT_INFORMATION``."""

    _fields_ = (
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    )


class IoCounters(ctypes.Structure):
    """``IO_COUNTERS``."""

    _fields_ = tuple(
        (name, ctypes.c_uint64) for name in ("Reads", "Writes", "Others", "ReadBytes", "WriteBytes", "OtherBytes")
    )


class ExtendedLimits(ctypes.Structure):
    """``JOBOBJECT_EXTENDED_LIMIT_INFORMATION``."""

    _fields_ = (
        ("BasicLimitInformation", BasicLimits),
        ("IoInfo", IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    )


class JobLifeline:
    """The farm's kill-on-close job (see the module docstring); a ``Lifeline``."""

    def __init__(self) -> None:
        self._kernel32: Any = None
        self._job: int | None = None
        self._farm_inside = False

    def start(self) -> None:
        if sys.platform != "win32" or self._job is not None:
            return
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.CreateJobObjectW.restype = ctypes.c_void_p
        kernel32.OpenProcess.restype = ctypes.c_void_p
        kernel32.GetCurrentProcess.restype = ctypes.c_void_p
        job = kernel32.CreateJobObjectW(None, None)  # no security attributes: the handle is not inherited
        if not job:
            raise ctypes.WinError(ctypes.get_last_error())
        limits = ExtendedLimits()
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not kernel32.SetInformationJobObject(
            ctypes.c_void_p(job), EXTENDED_LIMIT_INFORMATION, ctypes.byref(limits), ctypes.sizeof(limits)
        ):
            error = ctypes.WinError(ctypes.get_last_error())
            kernel32.CloseHandle(ctypes.c_void_p(job))
            raise error
        self._kernel32, self._job = kernel32, job
        self._farm_inside = bool(
            kernel32.AssignProcessToJobObject(ctypes.c_void_p(job), ctypes.c_void_p(kernel32.GetCurrentProcess()))
        )
        if not self._farm_inside:
            log.warning(
                "the farm cannot join its job object (%s): each worker joins it as it starts",
                ctypes.WinError(ctypes.get_last_error()),
            )

    def environ(self) -> Mapping[str, str]:
        return {}

    def adopt(self, pid: int) -> int:
        if sys.platform != "win32" or self._job is None or self._farm_inside:
            return 0  # inside already, when the farm is: a child starts in its parent's job
        kernel32 = self._kernel32
        process = kernel32.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, False, pid)
        if not process:
            return 0  # gone already
        try:
            if not kernel32.AssignProcessToJobObject(ctypes.c_void_p(self._job), ctypes.c_void_p(process)):
                log.error(
                    "worker %d cannot join the farm's job object: %s", pid, ctypes.WinError(ctypes.get_last_error())
                )
        finally:
            kernel32.CloseHandle(ctypes.c_void_p(process))
        return 0

    def release(self, registration: int) -> None:
        return None  # a process leaves its job by ending

    def close(self) -> None:
        # The handle is left to close with the farm's process: closing it now would kill the farm
        # itself when it is in the job, and whatever the farm leaves running dies then anyway.
        return None
