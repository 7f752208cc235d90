"""Task messages as the lease answer writes them: the JSON of ``TaskMessageOut``, by hand."""

from __future__ import annotations

import base64
import json

from xtreaming.coordinator.api.schemas import TaskMessageOut, messages_json
from xtreaming.coordinator.pending import PendingMessage

TOPIC = "MULTCOB03.1189.IMPORTACAO.X"


def test_messages_are_the_json_the_model_describes() -> None:
    messages = [
        PendingMessage(0, 7, b"111", 1, None, '<cliente nome="João \\ \n"/>'.encode()),
        PendingMessage(3, 12, None, 2, None, b"\xff\x00binary", (("origem", b"crm"), ("bin", b"\xff"))),
    ]

    written = messages_json(TOPIC, messages)

    expected = [
        {
            "id": f"{TOPIC}/0/7",
            "topic": TOPIC,
            "partition": 0,
            "offset": 7,
            "key": "111",
            "key_encoding": "utf-8",
            "value": '<cliente nome="João \\ \n"/>',
            "value_encoding": "utf-8",
            "headers": [],
            "attempt": 1,
        },
        {
            "id": f"{TOPIC}/3/12",
            "topic": TOPIC,
            "partition": 3,
            "offset": 12,
            "key": None,
            "key_encoding": "utf-8",
            "value": base64.b64encode(b"\xff\x00binary").decode(),
            "value_encoding": "base64",
            "headers": [["origem", base64.b64encode(b"crm").decode()], ["bin", base64.b64encode(b"\xff").decode()]],
            "attempt": 2,
        },
    ]
    assert json.loads(written) == expected
    assert [TaskMessageOut.model_validate(m).id for m in json.loads(written)] == [f"{TOPIC}/0/7", f"{TOPIC}/3/12"]
