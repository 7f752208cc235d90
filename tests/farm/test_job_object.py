"""The Windows job object's structures, checked where they can be: their layout is the Windows x64 ABI's
(the job object itself runs only on Windows, and is not exercised here)."""

from __future__ import annotations

import ctypes

import pytest

from xtreaming.farm.job_object import BasicLimits, ExtendedLimits


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="the sizes below are those of 64-bit Windows")
def test_the_limit_structures_have_the_sizes_and_offsets_windows_x64_expects() -> None:
    assert ctypes.sizeof(BasicLimits) == 64
    assert BasicLimits.LimitFlags.offset == 16
    assert ctypes.sizeof(ExtendedLimits) == 144  # sizeof(JOBOBJECT_EXTENDED_LIMIT_INFORMATION) on x64
    assert ExtendedLimits.ProcessMemoryLimit.offset == 112
