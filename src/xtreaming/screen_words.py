"""The operator screen's words for terminal views (the demo's live table, the CLI's tables), in pt-BR (default) and
English: queue states, column names, numbers, plurals and durations written as the screen writes them, so a person
reads one language in every view. ``XTREAMING_LANG`` (``pt-BR`` or ``en``) chooses the language."""

from __future__ import annotations

import os
import re
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
        "result.ok": "ok",
        "result.retry": "nova tentativa",
        "result.dead": "DLQ",
        "result.duplicate": "duplicada",
        "result.running": "rodando",
        "letter.dead": "aberta",
        "letter.queued": "na fila para reprocessar",
        "letter.replaying": "reprocessando",
        "letter.replayed": "reprocessada",
        "letter.skipped": "ignorada",
        "explain.runnable": "Nada impede: a fila recebe o próximo worker livre.",
        "done.queue.pause": "fila {target}: pausada",
        "done.queue.resume": "fila {target}: retomada",
        "done.base.pause": "base {target}: pausada",
        "done.base.resume": "base {target}: retomada",
        "done.priority": "fila {queue}: prioridade {priority}",
        "bulk.pause": "pausar",
        "bulk.resume": "retomar",
        "bulk.priority": "prioridade",
        "bulk.changed": "{action} {filter}: {queues} no filtro; alteradas: {changed}",
        "bulk.would-change": "{action} {filter}: {queues} no filtro; seriam alteradas: {changed}",
        "base.limits": "base {name}: em uso {in_use}/{limit}{window}; máximo padrão {max}, mínimo reservado {min}",
        "base.window": " (janela {window})",
        "base.paused": ", pausada",
        "window.text": "{days} {start}–{end} máx {max}",
        "window.added": "janela {id} adicionada a {base}: {window}",
        "window.removed": "janela {id} removida",
        "replay.finished": "reprocessamento {id} concluído: {letters} de volta em {topic}",
        "wait.still-running": "ainda rodando quando a espera terminou",
        "wait.summary": "{finished} concluídas ({dead} na DLQ); {running} ainda rodando",
        "col.timeout": "Tempo limite",
        "profile.added": "perfil {id} (posição {position}): {pattern} → {worker}",
        "profile.no-worker": "atenção: o perfil não indica worker: as filas que ele abrange não rodam até que um seja "
        "definido",
        "profile.removed": "perfil {id} removido",
        "worker.handler": "handler {handler}",
        "worker.command": "comando {command}",
        "worker.none": "sem worker",
        "one-per-key.kind": "conforme o tipo",
        "one-per-key.on": "sim",
        "one-per-key.off": "não",
        "settings.follows": "fila {queue}: segue {source}; * definido na própria fila",
        "settings.kind": "os padrões do seu tipo",
        "settings.profile": "o perfil {id}",
        "settings.no-worker": "nenhum worker configurado: a fila só é agendada quando um perfil ou --command/--handler "
        "indicar um",
        "setting.command": "comando",
        "setting.handler": "handler",
        "setting.batch_size": "lote",
        "setting.priority": "prioridade",
        "setting.timeout_s": "tempo limite",
        "setting.max_attempts": "tentativas",
        "setting.backoff_s": "espera antes de nova tentativa",
        "setting.required_labels": "rótulos exigidos",
        "setting.max_workers": "máximo de workers",
        "setting.one_per_key": "uma por chave",
        "schedule.added": "agendamento {id} adicionado: {topic} em '{cron}', próxima execução {next}",
        "schedule.removed": "agendamento {id} removido",
        "misfire.once": "uma vez",
        "misfire.skip": "pular",
        "source.csv": "CSV {path} (chave {column})",
        "source.message": "mensagem {key} = {value}",
        "source.no-key": "(sem chave)",
        "source.callable": "função {target}",
        "message.one": "mensagem",
        "message.many": "mensagens",
        "published.one": "mensagem publicada",
        "published.many": "mensagens publicadas",
        "tick.failed": "falhou após {messages}: {error}",
        "tick.publishing": "publicando ({count} até agora)",
        "tick.skipped.one": "pulada (perdida numa queda)",
        "tick.skipped.many": "pulada ({count} perdidas numa queda)",
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
        "result.ok": "ok",
        "result.retry": "retried",
        "result.dead": "DLQ",
        "result.duplicate": "duplicate",
        "result.running": "running",
        "letter.dead": "open",
        "letter.queued": "queued for replay",
        "letter.replaying": "replaying",
        "letter.replayed": "replayed",
        "letter.skipped": "skipped",
        "explain.runnable": "Nothing stops it: the queue gets the next free worker.",
        "done.queue.pause": "queue {target}: paused",
        "done.queue.resume": "queue {target}: resumed",
        "done.base.pause": "base {target}: paused",
        "done.base.resume": "base {target}: resumed",
        "done.priority": "queue {queue}: priority {priority}",
        "bulk.pause": "pause",
        "bulk.resume": "resume",
        "bulk.priority": "priority",
        "bulk.changed": "{action} {filter}: {queues} matched, changed {changed}",
        "bulk.would-change": "{action} {filter}: {queues} matched, would change {changed}",
        "base.limits": "base {name}: in use {in_use}/{limit}{window}; default max {max}, reserved min {min}",
        "base.window": " (window {window})",
        "base.paused": ", paused",
        "window.text": "{days} {start}–{end} max {max}",
        "window.added": "window {id} added to {base}: {window}",
        "window.removed": "window {id} removed",
        "replay.finished": "replay {id} finished: {letters} back on {topic}",
        "wait.still-running": "still running when the wait ended",
        "wait.summary": "{finished} finished ({dead} dead); {running} still running",
        "col.timeout": "Timeout",
        "profile.added": "profile {id} (position {position}): {pattern} → {worker}",
        "profile.no-worker": "note: it names no worker: the queues it matches will not run until one is set",
        "profile.removed": "profile {id} removed",
        "worker.handler": "handler {handler}",
        "worker.command": "command {command}",
        "worker.none": "no worker",
        "one-per-key.kind": "by kind",
        "one-per-key.on": "on",
        "one-per-key.off": "off",
        "settings.follows": "queue {queue}: follows {source}; * set on the queue",
        "settings.kind": "its kind's defaults",
        "settings.profile": "profile {id}",
        "settings.no-worker": "no worker configured: the queue is not scheduled until a profile or --command/--handler "
        "gives one",
        "setting.command": "command",
        "setting.handler": "handler",
        "setting.batch_size": "batch size",
        "setting.priority": "priority",
        "setting.timeout_s": "timeout",
        "setting.max_attempts": "max attempts",
        "setting.backoff_s": "backoff before a retry",
        "setting.required_labels": "required labels",
        "setting.max_workers": "max workers",
        "setting.one_per_key": "one per key",
        "schedule.added": "schedule {id} added: {topic} at '{cron}', next tick {next}",
        "schedule.removed": "schedule {id} removed",
        "misfire.once": "once",
        "misfire.skip": "skip",
        "source.csv": "CSV {path} (key {column})",
        "source.message": "message {key} = {value}",
        "source.no-key": "(no key)",
        "source.callable": "callable {target}",
        "message.one": "message",
        "message.many": "messages",
        "published.one": "message published",
        "published.many": "messages published",
        "tick.failed": "failed after {messages}: {error}",
        "tick.publishing": "publishing ({count} so far)",
        "tick.skipped.one": "skipped (missed during an outage)",
        "tick.skipped.many": "skipped ({count} missed during an outage)",
    },
}


#: Weekdays from Monday as the screen writes them (messages.*.json, ``weekdays``), lowercase in the terminal.
WEEKDAYS: Final = {
    "pt-BR": ("seg", "ter", "qua", "qui", "sex", "sáb", "dom"),
    "en": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
}

#: The coordinator's explanations (English, ``coordinator/core/reasons.py``) in pt-BR: the screen's patterns
#: (messages.pt-BR.json, ``reasons``), each a regular expression of the whole text and its words, ``$1``… the
#: groups. English needs none: the explanation is shown as the coordinator gives it.
REASONS: Final = (
    (
        "no worker configured",
        "Nenhum worker configurado: defina um comando ou um handler (um perfil ou as configurações da fila).",
    ),
    ("paused", "A fila está pausada."),
    ("base (\\S+) paused", "A base $1 está pausada."),
    ("no pending messages", "Não há mensagens pendentes."),
    ("queue at its max workers (\\d+/\\d+)", "A fila está no seu máximo de workers ($1)."),
    ("queue over its max workers (\\d+/\\d+)", "A fila está acima do seu máximo de workers ($1)."),
    ("base (\\S+) at its limit (\\d+/\\d+) in window (\\S+)", "A base $1 está no limite $2 da janela $3."),
    ("base (\\S+) over its limit (\\d+/\\d+) in window (\\S+)", "A base $1 está acima do limite $2 da janela $3."),
    ("base (\\S+) at its limit (\\d+/\\d+)", "A base $1 está no limite $2."),
    ("base (\\S+) over its limit (\\d+/\\d+)", "A base $1 está acima do limite $2."),
    ("no farm connected", "Nenhuma farm conectada."),
    ("no farm with labels? (.+)", "Nenhuma farm com o rótulo $1."),
    ("no farm with all of labels (.+)", "Nenhuma farm com todos os rótulos $1."),
    ("farm (\\S+) lacks labels? (.+)", "A farm $1 não tem o rótulo $2."),
    ("all pending messages have keys in flight", "Todas as mensagens pendentes têm a chave (CPF) em processamento."),
    (
        "all pending messages have keys in flight or are in back-off until (.+)",
        "As mensagens pendentes têm a chave em processamento ou aguardam nova tentativa até $1.",
    ),
    ("all pending messages are in back-off until (.+)", "As mensagens pendentes aguardam nova tentativa até $1."),
    (
        "waiting behind queue (\\S+): base (\\S+) is below its reserved minimum (\\d+/\\d+)",
        "Aguardando a fila $1: a base $2 está abaixo do mínimo reservado ($3).",
    ),
    ("waiting behind higher-priority queue (\\S+)", "Aguardando a fila $1, de prioridade maior."),
    (
        "waiting its turn behind queue (\\S+) of equal priority",
        "Aguardando a vez, atrás da fila $1, de mesma prioridade.",
    ),
    (
        "waiting for an urgent slot",
        "Aguardando um slot urgente: todos os slots que podem pegá-la, os reservados para trabalho "
        "urgente inclusive, estão ocupados.",
    ),
    ("reserved for urgent work \\(priority ≥ (\\d)\\)", "Reservado para trabalho urgente (prioridade ≥ $1)."),
    (
        "the idle slots are reserved for urgent work \\(priority ≥ (\\d)\\)",
        "Os slots livres estão reservados para trabalho urgente (prioridade ≥ $1).",
    ),
)


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


def code_word(kind: str, code: str, lang: str | None = None) -> str:
    """A code the API answers with (``kind``: ``result`` of an attempt, ``letter`` state of a dead letter) in the
    chosen language: ``retry`` → ``nova tentativa`` (pt-BR) or ``retried`` (en); an unknown code as the API names it."""
    return WORDS[language(lang)].get(f"{kind}.{code}", code)


def reason_words(reason: str, lang: str | None = None) -> str:
    """The coordinator's explanation of why a queue is not served (English) in the chosen language, by the screen's
    patterns (``REASONS``); ``runnable`` in a sentence. One no pattern knows is shown as the coordinator says it."""
    chosen = language(lang)
    if reason == "runnable":
        return word("explain.runnable", chosen)
    if chosen == "en":
        return reason
    for pattern, words in REASONS:
        match = re.fullmatch(pattern, reason)
        if match:
            return match.expand(re.sub(r"\$(\d)", r"\\\1", words))
    return reason


def weekdays(days: list[int], lang: str | None = None) -> str:
    """Weekday numbers (Monday=0) as ``seg,ter,qua`` (pt-BR) or ``mon,tue,wed`` (en)."""
    names = WEEKDAYS[language(lang)]
    return ",".join(names[day] for day in days)


def number(value: float, digits: int = 0, lang: str | None = None) -> str:
    """``1234567.5`` → ``1.234.567,5`` in pt-BR (dot groups thousands, comma marks decimals), ``1,234,567.5`` in
    English."""
    text = f"{value:,.{digits}f}"
    if language(lang) == "en":
        return text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def seconds(value: float, lang: str | None = None) -> str:
    """A setting in seconds with the decimals it has (up to 3): ``30 s``, ``0,5 s`` (pt-BR), ``0.5 s`` (en)."""
    decimals = f"{value:.3f}".rstrip("0").partition(".")[2]
    return f"{number(value, len(decimals), lang)} s"


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
