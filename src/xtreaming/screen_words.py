"""The operator screen's pt-BR words for terminal views (the demo's live table, the CLI's tables): queue states,
numbers and durations written as the screen writes them, so a person reads one language in every view."""

from __future__ import annotations

from typing import Final

#: A queue's state (``QueueFigures.state``) as the screen says it in pt-BR (messages.pt-BR.json, ``state.*``).
STATES: Final = {
    "running": "rodando",
    "waiting": "aguardando",
    "failing": "falhando",
    "no-worker": "sem worker configurado",
    "paused": "pausada",
    "base-paused": "base pausada",
    "idle": "vazia",
    "done": "concluída",
}


def state_word(state: str) -> str:
    """``running`` → ``rodando``; a state this module does not know yet is shown as the API names it."""
    return STATES.get(state, state)


def number(value: float, digits: int = 0) -> str:
    """``1234567.5`` → ``1.234.567,5``: pt-BR groups thousands with a dot and marks decimals with a comma."""
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min`` as the screen shows an ETA; ``—`` when unknown."""
    if seconds is None:
        return "—"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
