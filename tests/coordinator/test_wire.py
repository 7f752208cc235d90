"""Task messages as the lease answer writes them: columns (``TaskMessagesOut``)."""

from __future__ import annotations

import base64
import json

from xtreaming.coordinator.api.schemas import TaskMessagesOut, message_columns, packed_messages
from xtreaming.coordinator.core.pending import PendingMessage
from xtreaming.wire import lease_frame


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_messages_go_as_columns_text_where_they_are_utf8_and_base64_elsewhere() -> None:
    messages = [
        PendingMessage(0, 7, b"111", 1, None, '<cliente nome="João \\ \n"/>'.encode()),
        PendingMessage(3, 12, None, 2, None, b"\xff\x00binary", (("origem", b"crm"), ("bin", b"\xff"))),
        PendingMessage(1, 9, b"\xfe", 1, None, b""),
    ]

    written = json.loads(json.dumps(message_columns(messages), ensure_ascii=False))

    assert written == {
        "partitions": [0, 3, 1],
        "offsets": [7, 12, 9],
        "keys": ["111", None, base64.b64encode(b"\xfe").decode()],
        "values": ['<cliente nome="João \\ \n"/>', base64.b64encode(b"\xff\x00binary").decode(), ""],
        "attempts": [1, 2, 1],
        "headers": [
            [],
            [["origem", base64.b64encode(b"crm").decode()], ["bin", base64.b64encode(b"\xff").decode()]],
            [],
        ],
        "base64_keys": [2],
        "base64_values": [1],
    }
    assert TaskMessagesOut.model_validate(written).offsets == [7, 12, 9]


def test_messages_without_headers_send_none() -> None:
    written = message_columns([PendingMessage(0, 1, b"k", value=b"v")])

    assert (written["headers"], written["base64_keys"], written["base64_values"]) == (None, [], [])


def test_packed_messages_unpack_to_the_same_columns() -> None:
    messages = [
        PendingMessage(0, 7, b"111", 1, None, "<cliente nome='João'/>".encode()),
        PendingMessage(3, 2**40 + 12, None, 2, None, b"\xff\x00binary\n"),
        PendingMessage(1, 9, b"", 1, None, b""),
        PendingMessage(2**31 - 1, 0, b"\xfe\n", 9, None, b"x", (("origem", b"crm"),)),
    ]

    head, packed = packed_messages(messages)
    columns, end = lease_frame.unpack(b"head" + packed + b"next", 4, head["count"])

    assert head == {"count": 4, "headers": [[], [], [], [("origem", b64(b"crm"))]]}
    assert columns == lease_frame.MessageColumns(
        [0, 3, 1, 2**31 - 1], [7, 2**40 + 12, 9, 0], [1, 2, 1, 9], [b"111", None, b"", b"\xfe\n"],
        [m.value for m in messages],
    )  # fmt: skip
    assert end == 4 + len(packed)
