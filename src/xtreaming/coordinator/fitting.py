"""Result records cut to fit the broker's record limit (``Broker.max_record_bytes``), and result appends
that a refused record cannot fail: a message too large for its ``.DLQ`` or ``.ACK`` record is settled
like any other, its results written once.

What a cut record says of itself:

* ``.DLQ``: the value is cut first (never inside a UTF-8 character) and ``xtreaming-truncated`` holds
  the original value's size in bytes; then the message's own headers and the error history go
  (``xtreaming-dropped-headers``: how many), keeping ``xtreaming-source`` (where the whole message
  still is), ``-attempts`` and ``-task``; last, the key is cut (``xtreaming-truncated-key``: its size).
* ``.ACK``: the key inside the JSON is cut and ``key_truncated`` (the last field) holds the key's size
  in bytes; if the key alone is too large, the record's key is cut to the same prefix (the ACK may
  then land in another partition than its message); last, ``detail`` is cut (``detail_truncated``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Final

from xtreaming.broker import Broker, Headers, Record
from xtreaming.broker.port import record_size
from xtreaming.errors import RecordRejected

log = logging.getLogger("xtreaming.coordinator")

#: The original size in bytes of a value cut to fit.
TRUNCATED: Final = "xtreaming-truncated"
#: The original size in bytes of a key cut to fit.
TRUNCATED_KEY: Final = "xtreaming-truncated-key"
#: How many headers were left out to fit (the message's own and the error history).
DROPPED_HEADERS: Final = "xtreaming-dropped-headers"
#: A result record the broker refused although it fit ``max_record_bytes`` (the cluster's own limit is
#: lower) is appended again cut to this: librdkafka's smallest ``message.max.bytes``.
REFUSED_RECORD_BYTES: Final = 1000
#: What a DLQ record keeps to the last: where its message is, its attempts, the task that ended it.
_KEPT_HEADERS: Final = frozenset({"xtreaming-source", "xtreaming-attempts", "xtreaming-task"})
_MARKS: Final = frozenset({TRUNCATED, TRUNCATED_KEY, DROPPED_HEADERS})

#: Cuts a result record to fit a limit in bytes (``fit_dlq``, ``fit_ack``).
Fit = Callable[[Record, int], Record]


def prefix(data: bytes, size: int) -> bytes:
    """``data`` cut to at most ``size`` bytes, never inside a UTF-8 character (values are often text: XML,
    JSON): the cut moves back at most three bytes, which bytes that are not UTF-8 lose too."""
    if size >= len(data):
        return data
    cut = max(size, 0)
    while cut > 0 and size - cut < 3 and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return data[:cut]


def fit_dlq(record: Record, limit: int) -> Record:
    """``record`` (a ``.DLQ`` record) as it is when it fits ``limit``, else cut (see the module docstring)."""
    if record_size(record) <= limit:
        return record
    marks = {name: value for name, value in record.headers if name in _MARKS}
    headers = tuple(h for h in record.headers if h[0] not in _MARKS)
    key, value = record.key, record.value
    value_cut = (TRUNCATED, marks.get(TRUNCATED, b"%d" % len(value)))
    cut: Headers = (*headers, value_cut)
    room = limit - record_size(Record(key, b"", cut))
    if room >= 0:
        return Record(key, prefix(value, room), cut)
    kept = tuple(h for h in headers if h[0] in _KEPT_HEADERS)
    dropped = (DROPPED_HEADERS, b"%d" % (len(headers) - len(kept) + int(marks.get(DROPPED_HEADERS, b"0"))))
    slim = (*kept, *((value_cut,) if TRUNCATED in marks else ()), dropped)
    if record_size(Record(key, value, slim)) <= limit:  # the headers made all the difference
        return Record(key, value, slim)
    cut = (*kept, value_cut, dropped)
    room = limit - record_size(Record(key, b"", cut))
    if room < 0 and key:
        cut = (*cut, (TRUNCATED_KEY, marks.get(TRUNCATED_KEY, b"%d" % len(key))))
        key = prefix(key, limit - record_size(Record(b"", b"", cut)))
        room = limit - record_size(Record(key, b"", cut))
    return Record(key, prefix(value, room), cut)


def fit_ack(record: Record, limit: int) -> Record:
    """``record`` (an ``.ACK`` record) as it is when it fits ``limit``, else cut (see the module docstring)."""
    if record_size(record) <= limit:
        return record
    fields: dict[str, Any] = json.loads(record.value)
    key = record.key
    if key is not None:
        whole = key
        fields["key_truncated"] = fields.get("key_truncated", len(whole))
        # The key in the JSON first, the record's own key kept (it picks the partition).
        fitted = _shrunk(lambda n: Record(whole, _ack_json(fields, key=prefix(whole, n))), len(whole), limit)
        if fitted is None:
            fitted = _shrunk(
                lambda n: Record(prefix(whole, n), _ack_json(fields, key=prefix(whole, n))), len(whole), limit
            )
        if fitted is not None:
            return fitted
        key = b""
        fields["key"] = ""
    detail = fields.get("detail")
    if not isinstance(detail, str):
        return Record(key, _ack_json(fields))
    text = detail.encode()
    fields["detail_truncated"] = fields.get("detail_truncated", len(text))
    fitted = _shrunk(lambda n: Record(key, _ack_json(fields, detail=prefix(text, n))), len(text), limit)
    return fitted or Record(key, _ack_json(fields, detail=b""))


def append_results(broker: Broker, topic: str, records: Sequence[Record], fit: Fit) -> None:
    """``broker.append(topic, records)`` (records already cut to ``max_record_bytes``), where the records
    the broker refuses anyway (``RecordRejected``: the others are in the log) are appended again cut to
    ``REFUSED_RECORD_BYTES``, and any refused even then logged as an error and left out: a refused record
    never fails the append, so it never repeats the other results nor holds back the settlement.
    ``BrokerUnavailable`` goes through."""
    try:
        broker.append(topic, records)
    except RecordRejected as exc:
        _append_refused(broker, topic, records, exc, fit)


def begin_results(broker: Broker, topic: str, records: Sequence[Record], fit: Fit) -> Callable[[], None]:
    """``append_results`` in two steps, as ``Broker.begin_append``: ``BrokerUnavailable`` may come from
    either call, ``RecordRejected`` from neither."""
    try:
        appended = broker.begin_append(topic, records)
    except RecordRejected as exc:
        refused = exc
        return lambda: _append_refused(broker, topic, records, refused, fit)

    def confirmed() -> None:
        try:
            appended()
        except RecordRejected as exc:
            _append_refused(broker, topic, records, exc, fit)

    return confirmed


def _append_refused(broker: Broker, topic: str, records: Sequence[Record], exc: RecordRejected, fit: Fit) -> None:
    log.warning("%s; appending them again cut to %d bytes", exc, REFUSED_RECORD_BYTES)
    try:
        broker.append(topic, [fit(records[index], REFUSED_RECORD_BYTES) for index in exc.rejected])
    except RecordRejected as again:
        log.error(
            "topic %s: %d result record(s) left out, refused even when cut: %s", topic, len(again.rejected), again
        )


def _shrunk(build: Callable[[int], Record], size: int, limit: int) -> Record | None:
    """``build(n)`` for about the largest ``n <= size`` that fits ``limit``, or None when even ``build(0)``
    does not. A record grows with ``n`` at a rate of its own (a key in the JSON and as the record's key
    counts twice, an escaped byte six times): ``n`` is guessed from that rate, then lowered while over."""
    smallest = build(0)
    least = record_size(smallest)
    if least > limit:
        return None
    whole = build(size)
    if record_size(whole) <= limit:
        return whole
    per_byte = (record_size(whole) - least) / size
    n = int((limit - least) / per_byte)
    while n > 0:
        record = build(n)
        over = record_size(record) - limit
        if over <= 0:
            return record
        n -= max(1, math.ceil(over / per_byte))
    return smallest


def _ack_json(fields: dict[str, Any], *, key: bytes | None = None, detail: bytes | None = None) -> bytes:
    """The ACK's JSON as ``results.ack_records`` writes it, with ``key`` and ``detail`` (bytes) put in as text."""
    if key is not None:
        fields = {**fields, "key": key.decode("utf-8", "replace")}
    if detail is not None:
        fields = {**fields, "detail": detail.decode("utf-8", "replace")}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
