"""A CSV portfolio file as a stream of records: one per row, keyed by a column, read in constant memory.

``check_file`` reads the whole file before anything is published, so that a bad file fails at once with
its line, not after a million messages: a decoding pass locates the first undecodable byte exactly, then
a parsing pass runs the very reader the publishing pass runs (same settings, same code: ``_rows``) and
finds every error it would stop at: a field over the CSV reader's size limit, a quote never closed, a row
whose message the broker would refuse for its size. Rows that cannot become a message (no key, a key too
long, a field count that differs from the header, a quoted field spanning lines in raw mode) are not
errors: they are skipped and reported with their line numbers.
"""

from __future__ import annotations

import codecs
import csv
from _csv import Reader
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from json.encoder import encode_basestring
from operator import add
from pathlib import Path
from typing import Final, TextIO

from xtreaming.broker import Record
from xtreaming.broker.port import RECORD_OVERHEAD_BYTES, record_size
from xtreaming.errors import InvalidInput
from xtreaming.keys import MAX_KEY_BYTES, key_problem

#: Chunk size of the decoding pass.
CHUNK_BYTES: Final = 1 << 20
#: How many rejected (or oversized) rows a report lists (it counts them all).
REJECT_SAMPLES: Final = 20
DELIMITERS: Final = ",;|\t"


class ValueFormat(StrEnum):
    """How a row becomes a message value."""

    JSON = "json"  # the row as a JSON object {column: text}
    RAW = "raw"  # the line exactly as in the file, without its line break


@dataclass(slots=True)
class Rejects:
    """Rows skipped, with the first few line numbers and reasons."""

    count: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.samples) < REJECT_SAMPLES:
            self.samples.append(f"line {line}: {reason}")


@dataclass(frozen=True, slots=True)
class CsvLayout:
    """What the checking pass learned: line count (for progress), delimiter, header, column indexes, and
    how many rows become messages (duplicates of a key included)."""

    lines: int
    delimiter: str
    header: list[str]
    key_index: int
    value_index: int | None
    rows: int = 0


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A CSV load: which file, which column is the key, and how rows become values.

    Raises InvalidInput at once for options that cannot work together: a delimiter that is not one
    character (or is a quote or a line break), or a raw value format with a value column.
    """

    path: Path
    key_column: str
    value_format: ValueFormat = ValueFormat.JSON
    value_column: str | None = None
    delimiter: str | None = None  # None: guessed from the header line
    encoding: str = "utf-8"
    #: Rows that begin before this line are read (the whole file is checked) but not published: to finish
    #: a run the broker stopped, from the line its message names.
    from_line: int = 2

    def __post_init__(self) -> None:
        if self.from_line < 2:
            raise InvalidInput(f"from line {self.from_line}: rows begin on line 2, after the header")
        if self.delimiter is not None and (len(self.delimiter) != 1 or self.delimiter in '"\r\n'):
            raise InvalidInput(f"delimiter {self.delimiter!r}: give one character, e.g. ',' ';' '|' or a tab")
        if self.value_format is ValueFormat.RAW and self.value_column is not None:
            raise InvalidInput(
                f"value format 'raw' publishes whole lines and value column {self.value_column!r} one column's "
                "text: give one of them"
            )

    def check_file(self, max_record_bytes: int | None = None) -> CsvLayout:
        """Prove the file decodes, has the columns, and parses to the end with at least one usable row, and
        that no row's message is larger than ``max_record_bytes`` (the broker's limit; None: no limit);
        nothing is published yet.

        Raises InvalidInput naming the file and the line (and the column of an undecodable byte).
        """
        codec = self._codec()
        lines, header_line = self._decode(codec)
        delimiter = self.delimiter or _guess_delimiter(header_line)
        header = [name.strip() for name in self._header(header_line, delimiter)]
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:
            raise InvalidInput(f"{self.path} line 1: column {repeated[0]!r} appears more than once in the header")
        layout = CsvLayout(
            lines=lines,
            delimiter=delimiter,
            header=header,
            key_index=self._index_of(header, self.key_column, "key"),
            value_index=self._index_of(header, self.value_column, "value") if self.value_column else None,
        )
        return replace(layout, rows=self._count_rows(layout, max_record_bytes))

    def records(self, layout: CsvLayout, rejects: Rejects) -> Iterator[tuple[int, Record]]:
        """Yield ``(line number, record)`` per usable row (the row's last line, when a quoted field spans
        several); skipped rows go to ``rejects``. Raises InvalidInput where ``check_file`` would."""
        for _, last, record in self._rows(layout, rejects):
            yield last, record

    def _count_rows(self, layout: CsvLayout, max_record_bytes: int | None) -> int:
        rejects, oversized = Rejects(), Rejects()
        rows = 0
        # Values are only measured here: a row is encoded when its size bound could pass the limit.
        sizing = _sizing_encoder(layout.header, max_record_bytes)
        for first, _, record in self._rows(layout, rejects, sizing):
            rows += 1
            if max_record_bytes is not None and (size := record_size(record)) > max_record_bytes:
                oversized.add(first, f"its message is {size:,} bytes")
        if oversized.count:
            more = (
                f" (and {oversized.count - 1:,} more rows: {', '.join(oversized.samples[1:])})"
                if oversized.count > 1
                else ""
            )
            raise InvalidInput(
                f"{self.path} {oversized.samples[0]}, more than the broker takes ({max_record_bytes:,} bytes; "
                f"on Kafka, the producer's message.max.bytes){more}"
            )
        if rows == 0:
            shown = "; ".join(rejects.samples[:3]) + ("; …" if rejects.count > 3 else "")
            shown = shown or f"none begins on line {self.from_line} or after"
            raise InvalidInput(f"{self.path}: no row can become a message ({shown})")
        return rows

    def _rows(
        self, layout: CsvLayout, rejects: Rejects, encode: Callable[[list[str]], str] | None = None
    ) -> Iterator[tuple[int, int, Record]]:
        """``(first line, last line, record)`` per usable row: the one reader both passes run. ``encode``
        turns a row into its JSON value (by default, exactly: ``_row_encoder``)."""
        with self.path.open(encoding=self._codec(), newline="") as text:
            text.readline()
            if self.value_format is ValueFormat.RAW:
                yield from self._raw_records(text, layout, rejects)
            else:
                yield from self._json_records(text, layout, rejects, encode or _row_encoder(layout.header))

    def _json_records(
        self, text: TextIO, layout: CsvLayout, rejects: Rejects, to_json: Callable[[list[str]], str]
    ) -> Iterator[tuple[int, int, Record]]:
        reader = _reader(text, layout.delimiter)
        header, key_index, value_index = layout.header, layout.key_index, layout.value_index
        width = len(header)
        end = 1  # physical line where the last row ended; the header is line 1
        try:
            for row in reader:
                first_line, end = end + 1, reader.line_num + 1
                if not row or first_line < self.from_line:
                    continue
                key = self._key_of(row, width, key_index, first_line, rejects)
                if key is None:
                    continue
                value = row[value_index] if value_index is not None else to_json(row)
                yield first_line, end, Record(key, value.encode())
        except csv.Error as exc:
            raise InvalidInput(
                f"{self.path} line {end + 1}: {_csv_problem(exc, end + 1, reader.line_num + 1)}"
            ) from None

    def _raw_records(self, text: TextIO, layout: CsvLayout, rejects: Rejects) -> Iterator[tuple[int, int, Record]]:
        delimiter, width, key_index = layout.delimiter, len(layout.header), layout.key_index
        encoding = self._codec().removesuffix("-sig")
        for number, line in enumerate(text, start=2):
            body = line.rstrip("\r\n")
            if not body or number < self.from_line:
                continue
            if '"' in body:
                if body.count('"') % 2:
                    rejects.add(number, "a quoted field spans lines; raw values need one record per line")
                    continue
                try:
                    fields = next(_reader([body], delimiter))
                except csv.Error as exc:
                    rejects.add(number, _csv_problem(exc, number, number))
                    continue
            else:
                fields = body.split(delimiter)
            key = self._key_of(fields, width, key_index, number, rejects)
            if key is None:
                continue
            yield number, number, Record(key, body.encode(encoding))

    def _key_of(self, fields: list[str], width: int, key_index: int, line: int, rejects: Rejects) -> bytes | None:
        """The row's key, or None with the row rejected: fields not as many as the header's, or a key unusable."""
        if len(fields) != width:
            rejects.add(line, f"{len(fields)} fields, the header has {width}")
            return None
        key = fields[key_index].strip().encode()
        problem = key_problem(key)
        if problem is not None:
            rejects.add(line, f"column {self.key_column!r} {problem}")
            return None
        return key

    def _decode(self, codec: str) -> tuple[int, str]:
        """The file's line count and its header line, once every byte is known to decode."""
        decoder = codecs.getincrementaldecoder(codec)()
        lines = size = 0
        last = b""
        try:
            with self.path.open("rb") as raw:
                while chunk := raw.read(CHUNK_BYTES):
                    size += len(chunk)
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        raise self._decode_error(size - len(exc.object) + exc.start, exc) from exc
                    lines += chunk.count(b"\n")
                    last = chunk
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError as exc:
                    raise self._decode_error(size - len(exc.object) + exc.start, exc) from exc
            with self.path.open(encoding=codec, newline="") as text:
                header_line = text.readline()
        except OSError as exc:
            raise InvalidInput(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        if size == 0:
            raise InvalidInput(f"{self.path} is empty: expected a header line and rows")
        lines += 0 if last.endswith(b"\n") else 1
        if lines < 2:
            raise InvalidInput(f"{self.path} has a header but no rows")
        return lines, header_line

    def _header(self, header_line: str, delimiter: str) -> list[str]:
        try:
            return next(_reader([header_line], delimiter), [])
        except csv.Error as exc:
            raise InvalidInput(f"{self.path} line 1: {_csv_problem(exc, 1, 1)}") from None

    def _index_of(self, header: list[str], column: str, role: str) -> int:
        try:
            return header.index(column)
        except ValueError:
            shown = ", ".join(repr(name) for name in header[:12]) + (", …" if len(header) > 12 else "")
            raise InvalidInput(
                f"{self.path} line 1: no {role} column {column!r} in the header (columns: {shown})"
            ) from None

    def _codec(self) -> str:
        try:
            name = codecs.lookup(self.encoding).name
        except LookupError:
            raise InvalidInput(f"unknown encoding {self.encoding!r} (e.g. utf-8, cp1252, latin-1)") from None
        return "utf-8-sig" if name == "utf-8" else name

    def _decode_error(self, position: int, exc: UnicodeDecodeError) -> InvalidInput:
        with self.path.open("rb") as again:
            before = again.read(position)
        line = before.count(b"\n") + 1
        column = position - (before.rfind(b"\n") + 1) + 1
        byte = exc.object[exc.start : exc.start + 1].hex()
        return InvalidInput(
            f"{self.path} line {line}, column {column}: byte 0x{byte} is not valid {self.encoding} "
            "(files from Windows are often cp1252: pass --encoding cp1252)"
        )


def _reader(lines: Iterable[str], delimiter: str) -> Reader:
    """The CSV reader of both passes. Strict: text after a closing quote, or a file ending inside a quoted
    field, is an error rather than a row silently glued to the lines after it."""
    return csv.reader(lines, delimiter=delimiter, strict=True)


def _csv_problem(exc: csv.Error, first_line: int, reached_line: int) -> str:
    """The csv module's error, for the operator: the row began on ``first_line`` and the reader stopped
    on ``reached_line`` (further down when a quoted field ran on)."""
    text = str(exc)
    unclosed = "a quoted field opened on this line is never closed (a closing quote is missing?)"
    if "field larger than field limit" in text:
        if reached_line > first_line:
            return f"{unclosed}: it runs past {csv.field_size_limit():,} characters, to line {reached_line}"
        return f"a field is longer than {csv.field_size_limit():,} characters, the most a CSV field may hold"
    if "unexpected end of data" in text:
        return f"{unclosed}: it runs to the end of the file"
    if reached_line > first_line:
        return f"{unclosed}: the reader stopped on line {reached_line} ({text})"
    if "expected after" in text:
        return f"text after a closing quote ({text}); inside a quoted field, write a quote as two quotes"
    return text


def _row_encoder(header: list[str]) -> Callable[[list[str]], str]:
    """A row → ``{"column":"text",…}`` encoder, the same JSON as ``json.dumps(dict(zip(header, row)))``
    with compact separators and non-ASCII kept, about three times faster: keys are encoded once, fields by
    the json module's C string encoder."""
    prefixes = [encode_basestring(name) + ":" for name in header]

    def encode(row: list[str]) -> str:
        return "{" + ",".join(map(add, prefixes, map(encode_basestring, row))) + "}"

    return encode


def _sizing_encoder(header: list[str], max_record_bytes: int | None) -> Callable[[list[str]], str]:
    """An encoder for the check: the row's JSON only when it might make a record over ``max_record_bytes``,
    else "" (cheaper, and enough to size it). Bound: ``_row_encoder`` writes at most 6 bytes per character of
    a field (``\\u001f``; a character kept as is takes at most 4 in UTF-8), and ``framing`` around them."""
    exact = _row_encoder(header)
    if max_record_bytes is None:
        return lambda _: ""
    framing = sum(len(encode_basestring(name).encode()) + 4 for name in header) + 2  # "name":"…", {}
    limit = max_record_bytes - RECORD_OVERHEAD_BYTES - MAX_KEY_BYTES - framing

    def encode(row: list[str]) -> str:
        return exact(row) if 6 * sum(map(len, row)) > limit else ""

    return encode


def _guess_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","
