"""What a schedule publishes, as records: a CSV file (read as ``xtreaming publish --csv`` reads it), one fixed
message, or the ``(key, value)`` pairs a Python callable returns or yields.

``check_source`` is run when a schedule is added (nothing is stored when it fails); ``records_of`` at each tick.
A callable runs in the coordinator's process, so only admins add schedules.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from xtreaming.broker import Record
from xtreaming.coordinator.schedule_records import CsvSource, FixedMessage, InvalidSchedule, Source
from xtreaming.csv_source import CsvFile, Rejects, ValueFormat
from xtreaming.errors import InvalidInput
from xtreaming.keys import key_problem

#: ``package.module:function``.
CALLABLE_PATTERN: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def check_source(source: Source, max_record_bytes: int | None) -> None:
    """Refuse a source that cannot publish: a CSV missing or failing ``xtreaming publish``'s check, a fixed
    message with an unusable key, a callable that does not import. Raises InvalidSchedule or InvalidInput."""
    if isinstance(source, CsvSource):
        _csv_file(source).check_file(max_record_bytes)
    elif isinstance(source, FixedMessage):
        if source.key is not None and (problem := key_problem(source.key.encode())) is not None:
            raise InvalidSchedule(f"key {problem}")
    else:
        load_callable(source.target)


def records_of(source: Source, max_record_bytes: int | None) -> Iterator[Record]:
    """The source's records for one tick, in order (duplicate keys not dropped yet). A CSV is checked whole
    first (InvalidInput); a callable's error, or a pair that is no record, is raised as it comes."""
    if isinstance(source, CsvSource):
        file = _csv_file(source)
        layout = file.check_file(max_record_bytes)
        for _, record in file.records(layout, Rejects()):
            yield record
    elif isinstance(source, FixedMessage):
        yield Record(None if source.key is None else source.key.encode(), source.value.encode())
    else:
        produced = load_callable(source.target)()
        if produced is None:
            return
        for number, item in enumerate(produced):
            yield _record(source.target, number, item)


def load_callable(target: str) -> Callable[[], Any]:
    """The function ``module:function`` names. Raises InvalidSchedule saying why it cannot be used."""
    if not CALLABLE_PATTERN.match(target):
        raise InvalidSchedule(f"callable {target!r}: give it as module:function, e.g. mysite.feeds:cobsinc_requests")
    module_name, name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever importing user code raises: the sentence says what
        raise InvalidSchedule(f"callable {target!r}: module {module_name!r} does not import: {exc}") from exc
    function = getattr(module, name, None)
    if function is None:
        raise InvalidSchedule(f"callable {target!r}: module {module_name!r} has no {name!r}")
    if not callable(function):
        raise InvalidSchedule(f"callable {target!r}: {name!r} is not callable")
    return function  # type: ignore[no-any-return]


def _csv_file(source: CsvSource) -> CsvFile:
    path = Path(source.path)
    if not path.is_file():
        raise InvalidSchedule(f"CSV file {source.path} does not exist on the coordinator's machine")
    try:
        value_format = ValueFormat(source.value_format)
    except ValueError:
        raise InvalidSchedule(f"value format {source.value_format!r}: give json or raw") from None
    return CsvFile(path, source.key_column, value_format, source.value_column, source.delimiter, source.encoding)


def _record(target: str, number: int, item: object) -> Record:
    """A callable's ``number``-th item as a record: a ``(key, value)`` pair of str or bytes, the key maybe None."""
    if not (isinstance(item, tuple | list) and len(item) == 2):
        raise InvalidInput(f"callable {target!r}: item {number} is {type(item).__name__}, not a (key, value) pair")
    key, value = item
    if key is not None and not isinstance(key, str | bytes):
        raise InvalidInput(f"callable {target!r}: item {number}'s key is {type(key).__name__}, not str or bytes")
    if not isinstance(value, str | bytes):
        raise InvalidInput(f"callable {target!r}: item {number}'s value is {type(value).__name__}, not str or bytes")
    key_bytes = key.encode() if isinstance(key, str) else key
    if key_bytes is not None and (problem := key_problem(key_bytes)) is not None:
        raise InvalidInput(f"callable {target!r}: item {number}'s key {problem}")
    return Record(key_bytes, value.encode() if isinstance(value, str) else value)
