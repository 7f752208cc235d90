"""``xtreaming publish``: a checked CSV file → the producer, with a progress bar showing the rate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from xtreaming.broker import Record
from xtreaming.csv_source import CsvFile, Rejects
from xtreaming.defaults import DEFAULT_PARTITIONS
from xtreaming.producer import DEFAULT_BATCH_SIZE, Producer, PublishReport
from xtreaming.topics import TopicName


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


def publish_csv(
    source: CsvFile,
    topic: str,
    broker_url: str,
    *,
    partitions: int = DEFAULT_PARTITIONS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    console: Console | None = None,
) -> CsvOutcome:
    """Check the whole file, then publish it; nothing is written when the check fails.

    ``partitions``: of the topic if it is created (the CLI passes ``settings.default_partitions``).
    Raises InvalidTopicName / InvalidInput before writing; BrokerUnavailable while writing
    (whole batches only were written then).
    """
    TopicName.parse(topic)
    layout = source.check_file()
    rejects = Rejects()
    last_line = 1

    def records() -> Iterator[Record]:
        nonlocal last_line
        for line, record in source.records(layout, rejects):
            last_line = line
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
    started = time.perf_counter()
    with Producer(broker_url, partitions=partitions, batch_size=batch_size) as producer, progress:
        task = progress.add_task(topic, total=layout.lines - 1)
        report = producer.publish(topic, records(), on_batch=lambda _: progress.update(task, completed=last_line - 1))
    return CsvOutcome(report, rejects, time.perf_counter() - started)
