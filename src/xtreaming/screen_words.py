"""The operator screen's words for terminal views (the demo's live table, the CLI's tables), in pt-BR (default) and
English: queue states, column names, numbers, plurals and durations written as the screen writes them, so a person
reads one language in every view. ``XTREAMING_LANG`` (``pt-BR`` or ``en``) chooses the language."""

from __future__ import annotations

import os
from typing import Final

LANGUAGES: Final = ("pt-BR", "en")
DEFAULT_LANGUAGE: Final = "pt-BR"

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

#: The same states in English (messages.en.json, ``state.*``).
STATES_EN: Final = {
    "running": "running",
    "waiting": "waiting",
    "failing": "failing",
    "no-worker": "no worker configured",
    "paused": "paused",
    "base-paused": "base paused",
    "idle": "empty",
    "done": "done",
}

#: Every other word a terminal view shows, per language; column names follow the screen's ``col.*``.
WORDS: Final[dict[str, dict[str, str]]] = {
    "pt-BR": {
        "col.topic": "Fila",
        "col.kind": "Tipo",
        "col.prio": "Prio",
        "col.priority": "Prioridade",
        "col.state": "Estado",
        "col.workers": "Workers",
        "col.on-base": "Na base",
        "col.base": "Workers na base",
        "col.consumed": "Consumidos",
        "col.pending": "Pendentes",
        "col.failures": "Falhas",
        "col.dead": "DLQ",
        "col.speed": "Velocidade (msgs/s)",
        "col.eta": "ETA",
        "col.changes": "Muda",
        "col.window": "Janela",
        "col.farm": "Farm",
        "col.labels": "Rótulos",
        "col.slots": "Slots ocupados/total",
        "col.urgent": "Urgentes",
        "col.heartbeat": "Último heartbeat",
        "title": "Acompanhamento de MultCobXtreaming",
        "queue.one": "fila",
        "queue.many": "filas",
        "active": "ativa",
        "lost": "PERDIDA",
        "yes": "sim",
        "window": "janela",
        "priority-at-least": "prioridade ≥",
        "quit": "Ctrl-C para encerrar",
        "consumed": "consumidos",
        "pending": "pendentes",
        "busy-worker.one": "worker ocupado",
        "busy-worker.many": "workers ocupados",
        "demo.title": "[bold]Demonstração do Xtreaming[/] — dados em {data_dir}",
        "demo.coordinator": "coordenador: {url}  (painel: {url}/ · API: {url}/docs · log: {log})",
        "demo.forming": "formando filas: {loads} carteiras de {clients} clientes",
        "demo.published": "  {topic}: {published} clientes publicados ({duplicates} CPFs repetidos descartados)",
        "demo.farms": "farms: {names} ({slots} slots cada)",
        "demo.interrupted": "Ctrl-C: encerrando",
        "demo.stopping": "parando as farms: as tarefas em execução terminam (Ctrl-C de novo para matá-las)…",
        "demo.killing": "matando as tarefas em execução; elas voltam para nova tentativa…",
        "demo.finished": "demonstração encerrada. Bancos dos workers: {bases}; logs: {logs}",
        "demo.header": "painel {url}/ · API {url}/docs",
        "demo.after": "após {seconds} s",
        "col.open": "Abertas",
        "col.replayed": "Reprocessadas",
        "col.skipped": "Ignoradas",
        "col.error": "Erro",
        "col.count": "Qtde",
        "col.samples": "Exemplos (chave)",
        "col.letter": "Mensagem (DLQ)",
        "col.key": "Chave",
        "col.attempts": "Tent.",
        "col.died-at": "Morreu em",
        "col.replayed-as": "Reprocessada como",
        "col.time": "Hora",
        "col.message": "Mensagem",
        "col.attempt": "Tentativa",
        "col.result": "Resultado",
        "col.duration": "Duração",
        "col.detail": "Detalhe",
        "col.pattern": "Padrão",
        "col.batch": "Lote",
        "col.tries": "Tentativas",
        "col.max": "Max",
        "col.one-per-key": "Uma por chave",
        "col.publishes": "Publica",
        "col.misfire": "Perdidos",
        "col.last": "Último",
        "col.next": "Próximo",
        "open-letter.one": "mensagem aberta na DLQ",
        "open-letter.many": "mensagens abertas na DLQ",
        "dead-letter.one": "mensagem da DLQ",
        "dead-letter.many": "mensagens da DLQ",
        "attempt.one": "tentativa",
        "attempt.many": "tentativas",
        "schedule.one": "agendamento",
        "schedule.many": "agendamentos",
        "dlq.summary": "{letters} em {topics}",
        "dlq.shown": "{shown} de {letters} mostradas",
        "history.none": "Nenhuma tentativa registrada para {key}.",
        "history.summary": "{attempts} da chave {key}",
        "history.more": "; mais antigas: --limit acima de {limit}",
    },
    "en": {
        "col.topic": "Queue",
        "col.kind": "Type",
        "col.prio": "Prio",
        "col.priority": "Priority",
        "col.state": "State",
        "col.workers": "Workers",
        "col.on-base": "On base",
        "col.base": "Workers on base",
        "col.consumed": "Consumed",
        "col.pending": "Pending",
        "col.failures": "Failures",
        "col.dead": "DLQ",
        "col.speed": "Speed (msgs/s)",
        "col.eta": "ETA",
        "col.changes": "Changes",
        "col.window": "Window",
        "col.farm": "Farm",
        "col.labels": "Labels",
        "col.slots": "Busy/total slots",
        "col.urgent": "Urgent",
        "col.heartbeat": "Last heartbeat",
        "title": "MultCobXtreaming monitor",
        "queue.one": "queue",
        "queue.many": "queues",
        "active": "active",
        "lost": "LOST",
        "yes": "yes",
        "window": "window",
        "priority-at-least": "priority ≥",
        "quit": "Ctrl-C to quit",
        "consumed": "consumed",
        "pending": "pending",
        "busy-worker.one": "busy worker",
        "busy-worker.many": "busy workers",
        "demo.title": "[bold]Xtreaming demo[/] — data in {data_dir}",
        "demo.coordinator": "coordinator: {url}  (screen: {url}/ · API: {url}/docs · log: {log})",
        "demo.forming": "forming queues: {loads} portfolios of {clients} clients",
        "demo.published": "  {topic}: {published} clients published ({duplicates} repeated CPFs dropped)",
        "demo.farms": "farms: {names} ({slots} slots each)",
        "demo.interrupted": "Ctrl-C: stopping",
        "demo.stopping": "stopping the farms: running tasks finish (Ctrl-C again to kill them)…",
        "demo.killing": "killing the running tasks; they go back for another attempt…",
        "demo.finished": "demo finished. Worker databases: {bases}; logs: {logs}",
        "demo.header": "screen {url}/ · API {url}/docs",
        "demo.after": "after {seconds} s",
        "col.open": "Open",
        "col.replayed": "Replayed",
        "col.skipped": "Skipped",
        "col.error": "Error",
        "col.count": "Count",
        "col.samples": "Samples (key)",
        "col.letter": "Message (DLQ)",
        "col.key": "Key",
        "col.attempts": "Att.",
        "col.died-at": "Died at",
        "col.replayed-as": "Replayed as",
        "col.time": "Time",
        "col.message": "Message",
        "col.attempt": "Attempt",
        "col.result": "Result",
        "col.duration": "Duration",
        "col.detail": "Detail",
        "col.pattern": "Pattern",
        "col.batch": "Batch",
        "col.tries": "Attempts",
        "col.max": "Max",
        "col.one-per-key": "One per key",
        "col.publishes": "Publishes",
        "col.misfire": "Missed",
        "col.last": "Last",
        "col.next": "Next",
        "open-letter.one": "open dead letter",
        "open-letter.many": "open dead letters",
        "dead-letter.one": "dead letter",
        "dead-letter.many": "dead letters",
        "attempt.one": "attempt",
        "attempt.many": "attempts",
        "schedule.one": "schedule",
        "schedule.many": "schedules",
        "dlq.summary": "{letters} in {topics}",
        "dlq.shown": "{shown} of {letters} shown",
        "history.none": "No attempt recorded for {key}.",
        "history.summary": "{attempts} of key {key}",
        "history.more": "; older ones: --limit above {limit}",
    },
}


class UnknownLanguage(ValueError):
    """``XTREAMING_LANG`` names a language the terminal views do not speak."""


def language(value: str | None = None) -> str:
    """``pt-BR`` (default) or ``en``, from ``value`` or ``XTREAMING_LANG``; any other value is refused in a sentence."""
    chosen = value if value is not None else os.environ.get("XTREAMING_LANG", "")
    if not chosen.strip():
        return DEFAULT_LANGUAGE
    for known in LANGUAGES:
        if chosen.strip().lower() == known.lower():
            return known
    raise UnknownLanguage(f"language {chosen!r} is not known: use one of {', '.join(LANGUAGES)}")


def word(key: str, lang: str | None = None) -> str:
    """The word for ``key`` in the chosen language."""
    return WORDS[language(lang)][key]


def state_word(state: str, lang: str | None = None) -> str:
    """``running`` → ``rodando`` (pt-BR) or ``running`` (en); an unknown state is shown as the API names it."""
    return (STATES_EN if language(lang) == "en" else STATES).get(state, state)


def number(value: float, digits: int = 0, lang: str | None = None) -> str:
    """``1234567.5`` → ``1.234.567,5`` in pt-BR (dot groups thousands, comma marks decimals), ``1,234,567.5`` in
    English."""
    text = f"{value:,.{digits}f}"
    if language(lang) == "en":
        return text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def counted(count: int, key: str, lang: str | None = None) -> str:
    """``1 fila``, ``2 filas``, ``1,000 queues``: the count in the language's digits and the word's right form."""
    form = "one" if count == 1 else "many"
    return f"{number(count, 0, lang)} {word(f'{key}.{form}', lang)}"


def duration(seconds: float | None) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 05 min`` as the screen shows an ETA (the same in both languages); ``—`` when
    unknown."""
    if seconds is None:
        return "—"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
