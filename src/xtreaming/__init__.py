"""Xtreaming: one message per client, scheduled across worker farms."""

from __future__ import annotations

__version__ = "0.1.0"
