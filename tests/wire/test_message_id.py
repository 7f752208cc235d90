"""Message ids: one format, read back exactly, bad text refused with the expected form."""

from __future__ import annotations

import pytest

from xtreaming.wire.message_id import InvalidMessageId, message_id, message_ids, parse_message_id


def test_an_id_reads_back_as_its_topic_partition_and_offset() -> None:
    text = message_id("MULTCOB02.1186.IMPORTACAO.CARGA", 3, 2**63 - 1)

    assert text == "MULTCOB02.1186.IMPORTACAO.CARGA/3/9223372036854775807"
    assert parse_message_id(text) == ("MULTCOB02.1186.IMPORTACAO.CARGA", 3, 2**63 - 1)


def test_ids_of_many_messages_match_one_at_a_time() -> None:
    positions = [(0, 5), (2, 1), (0, 6)]

    assert message_ids("T", positions) == [message_id("T", p, o) for p, o in positions]


@pytest.mark.parametrize("text", ["", "T", "T/0", "/0/1", "T/x/1", "T/0/-1", "T/0/²", "T/0/1 "])
def test_text_that_is_not_an_id_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(InvalidMessageId, match="expected topic/partition/offset"):
        parse_message_id(text)
