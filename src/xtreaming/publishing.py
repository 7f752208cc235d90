"""``xtreaming publish``: a checked CSV file → the producer, with a progress bar showing the rate.

All or nothing as far as the file decides: the check reads the whole file with the publishing pass's own
reader and the broker's record limit, so a bad file writes nothing. What the file cannot decide (the
broker going away mid-run) stops the run with exactly what was written: the rows, by line, and where
each partition of the topic ended before the run (an append-only log cannot take records back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from xtreaming.broker import Broker, Record
from xtreaming.csv_source import CsvFile, Rejects
from xtreaming.defaults import DEFAULT_PARTITIONS, MAX_WAITED_MESSAGES
from xtreaming.errors import InvalidInput, TopicNotFound, XtreamingError
from xtreaming.producer import DEFAULT_BATCH_SIZE, Producer, PublishReport
from xtreaming.screen_words import code_word, word
from xtreaming.topics import TopicName


class PublishInterrupted(XtreamingError):
    """Publishing stopped after some rows were written; the message says which and where."""


@dataclass(frozen=True, slots=True)
class CsvOutcome:
    report: PublishReport
    rejects: Rejects
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Input rows handled per second."""
        handled = self.report.published + self.report.duplicates + self.rejects.count
        return handled / self.elapsed_s if self.elapsed_s > 0 else 0.0


class RateColumn(ProgressColumn):
    """Rows per second, as rich measures it over the last updates."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f}/s" if task.speed else "-/s", style="progress.data.speed")


@dataclass(slots=True)
class _Progress:
    """How far the file has been read (``read_through``) and written (``written_through``), by line."""

    read_through: int = 1
    written_through: int = 1


def publish_csv(
    source: CsvFile,
    topic: str,
    broker: Broker | str,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    console: Console | None = None,
    wait_s: float | None = None,
) -> CsvOutcome:
    """Check the whole file, then publish it; nothing is written when the check fails.

    ``broker``: an open broker (left open) or a URL. ``partitions``: of the topic if it is created (the
    CLI passes ``settings.default_partitions``). ``wait_s``: then wait for each message's outcome
    (``Producer.publish``), for a file of at most ``MAX_WAITED_MESSAGES`` rows. Raises InvalidTopicName /
    InvalidInput before writing; PublishInterrupted when the broker fails while writing, saying what was written.
    """
    TopicName.parse(topic)
    with Producer(broker, partitions=partitions, batch_size=batch_size) as producer:
        layout = source.check_file(producer.broker.max_record_bytes)
        rows = layout.lines - source.from_line + 1
        if wait_s is not None and rows > MAX_WAITED_MESSAGES:
            raise InvalidInput(
                f"{source.path}: {rows:,} lines from line {source.from_line} on; a publish may wait for the "
                f"outcomes of at most {MAX_WAITED_MESSAGES:,} messages: publish without --wait, or a smaller "
                "file; nothing was published"
            )
        ends_before = _end_offsets(producer.broker, topic)
        rejects = Rejects()
        report = PublishReport(topic)
        where = _Progress()

        def records() -> Iterator[Record]:
            for line, record in source.records(layout, rejects):
                where.read_through = line
                yield record

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )

        def written(_: int) -> None:
            where.written_through = where.read_through
            progress.update(task, completed=where.read_through - 1)

        started = time.perf_counter()
        with progress:
            task = progress.add_task(topic, total=layout.lines - 1)
            try:
                producer.publish(topic, records(), on_batch=written, report=report, wait_s=wait_s)
            except XtreamingError as exc:
                raise PublishInterrupted(_interrupted(source, report, where, ends_before, exc)) from exc
    return CsvOutcome(report, rejects, time.perf_counter() - started)


#: How ``outcome_table`` shows each status.
_STATUS_STYLES = {"ok": "green", "dead": "bold red", "duplicate": "yellow"}


def outcome_table(report: PublishReport) -> Table:
    """Each message's outcome after a wait, in the order published: the finished ones, then those still running."""
    table = Table(*(word(f"col.{c}") for c in ("message", "key", "result", "tries", "detail")))
    for outcome in report.outcomes:
        status, key, detail = outcome.status, escape(outcome.key or "-"), escape(outcome.detail or "")
        shown = f"[{_STATUS_STYLES[status]}]{code_word('result', status)}[/]"
        table.add_row(outcome.id, key, shown, str(outcome.attempts), detail)
    for message in report.running:
        table.add_row(message, "", f"[bold]{word('result.running')}[/]", "", word("wait.still-running"))
    return table


def _end_offsets(broker: Broker, topic: str) -> dict[int, int]:
    try:
        return broker.end_offsets(topic)
    except TopicNotFound:
        return {}


def _interrupted(
    source: CsvFile, report: PublishReport, where: _Progress, ends_before: dict[int, int], exc: Exception
) -> str:
    """What was written before ``exc`` stopped the run, in words an operator can resume from."""
    if where.written_through > 1:
        written = f"rows of lines 2–{where.written_through} are in the log ({report.published:,} messages"
        written += (
            ", appended to partitions that ended at " + ", ".join(f"{p}:{o:,}" for p, o in sorted(ends_before.items()))
            if ends_before
            else ", the topic's first"
        )
        written += ")"
    else:
        written = "no row was written"
    pending = ""
    if where.read_through > where.written_through:
        pending = (
            f"; lines {where.written_through + 1}–{where.read_through} were being appended (none of them on "
            "the embedded log; on Kafka, each partition may hold a first part of them)"
        )
    return (
        f"{source.path}: publishing stopped: {exc}. {written[0].upper()}{written[1:]}{pending}; "
        f"rows from line {where.read_through + 1} on were not written. To finish, publish the file again "
        f"with --from-line {where.written_through + 1}"
    )
