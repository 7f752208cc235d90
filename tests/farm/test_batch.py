"""What a handler receives: messages decoded from the lease's columns, as the farm sends them to its
handler processes."""

from __future__ import annotations

import pickle

from tests.farm.builders import TOPIC, binary_message, leased, message
from xtreaming.farm.batch import HandlerMessage, from_columns


def handler_messages(rows: list[dict[str, object]]) -> list[HandlerMessage]:
    """The messages a handler process builds, after the columns crossed the pipe."""
    return from_columns(pickle.loads(pickle.dumps(leased(rows).handler_columns())))


def test_messages_decode_text_and_base64_keys_values_and_headers() -> None:
    text, raw, odd = handler_messages(
        [message(7, key="12345678901", value='{"nome": "João"}'), binary_message(8), message(9, key="ç", attempt=5)]
    )

    assert text == HandlerMessage(f"{TOPIC}/0/7", TOPIC, 0, 7, b"12345678901", '{"nome": "João"}'.encode(), (), 2)
    assert text.json() == {"nome": "João"}
    assert (raw.key, raw.value) == (None, b"\xff\x00\xfe")
    assert raw.headers == (("trace", b"\x01\x02"), ("origem", b"CRM"))
    assert (odd.id, odd.key, odd.attempt, odd.headers) == (f"{TOPIC}/0/9", "ç".encode(), 5, ())


def test_a_base64_key_is_decoded() -> None:
    [decoded] = handler_messages([{**message(1), "key": "/w==", "key_encoding": "base64"}])

    assert decoded.key == b"\xff"


def test_messages_of_one_topic_share_its_string() -> None:
    ids, topics, *_ = leased([message(0), message(1), message(2)]).handler_columns()

    assert len(ids) == 3
    assert all(topic is topics[0] for topic in topics)


def test_a_message_is_hashable_on_its_fields() -> None:
    first, again = handler_messages([binary_message(1), binary_message(1)])

    assert {first, again} == {first}
