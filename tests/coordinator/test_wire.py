"""Task messages as the lease answer writes them: columns (``TaskMessagesOut``)."""

from __future__ import annotations

import base64
import json

from xtreaming.coordinator.api.schemas import TaskMessagesOut, message_columns
from xtreaming.coordinator.pending import PendingMessage


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


def test_framed_columns_give_the_size_of_each_value_instead_of_the_value() -> None:
    messages = [
        PendingMessage(0, 7, b"111", 1, None, "<cliente nome='João'/>".encode()),
        PendingMessage(3, 12, None, 2, None, b"\xff\x00binary"),
        PendingMessage(1, 9, b"\xfe", 1, None, b""),
    ]

    framed, inline = message_columns(messages, framed=True), message_columns(messages)

    assert framed["value_sizes"] == [len("<cliente nome='João'/>".encode()), 8, 0]
    assert framed | {"values": inline["values"], "base64_values": inline["base64_values"]} == inline | {
        "value_sizes": framed["value_sizes"]
    }
    assert TaskMessagesOut.model_validate(framed).values is None
