"""Topic names: parsing work topics, their .ACK/.DLQ companions, and errors that say what is wrong."""

from __future__ import annotations

import re

import pytest

from xtreaming.errors import InvalidTopicName, XtreamingError
from xtreaming.topics import MAX_WORK_TOPIC_LENGTH, TopicName, is_derived, parse_work_topic, source_of

WORK = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


def test_a_work_topic_parses_into_its_four_parts() -> None:
    topic = TopicName.parse(WORK)

    assert topic == TopicName(base="MULTCOB03", convenio="1189", kind="IMPORTACAO", process="ATUALIZA_BUREAU")
    assert str(topic) == WORK


@pytest.mark.parametrize(
    "name",
    [
        "MULTCOB02.7.COBSINC.DIARIO",
        "A.0001.B.C",  # the convenio keeps its leading zeros: it is a code, not a number
        "BASE_2.42.OUTRO_TIPO.PROC_9",
        "MULTCOB03.1189.IMPORTACAO.ACK",  # four parts: a process that happens to be called ACK
    ],
)
def test_valid_names_round_trip(name: str) -> None:
    assert str(TopicName.parse(name)) == name


def test_derived_topic_names() -> None:
    topic = TopicName.parse(WORK)

    assert topic.ack == f"{WORK}.ACK"
    assert topic.dlq == f"{WORK}.DLQ"


@pytest.mark.parametrize(("kind", "known"), [("IMPORTACAO", True), ("COBSINC", True), ("ENRIQUECIMENTO", False)])
def test_other_kinds_are_allowed_but_not_known(kind: str, known: bool) -> None:
    assert TopicName.parse(f"MULTCOB03.1189.{kind}.CARGA").is_known_kind is known


@pytest.mark.parametrize(
    ("name", "derived"),
    [
        (f"{WORK}.ACK", True),
        (f"{WORK}.DLQ", True),
        (WORK, False),
        ("MULTCOB03.1189.IMPORTACAO.ACK", False),
        (f"{WORK}.ack", False),
        (f"{WORK}.RETRY", False),
        (f"{WORK}.ACK.DLQ", False),
        ("ACK", False),
        ("", False),
    ],
)
def test_is_derived(name: str, derived: bool) -> None:
    assert is_derived(name) is derived


@pytest.mark.parametrize("suffix", ["ACK", "DLQ"])
def test_source_of_a_derived_topic_is_its_work_topic(suffix: str) -> None:
    assert source_of(f"{WORK}.{suffix}") == TopicName.parse(WORK)


def test_source_of_a_work_topic_is_refused() -> None:
    with pytest.raises(InvalidTopicName, match=re.escape(f"topic '{WORK}' is not an .ACK or .DLQ topic")):
        source_of(WORK)


def test_source_of_a_derived_topic_with_a_malformed_work_topic_names_the_part() -> None:
    with pytest.raises(InvalidTopicName, match=re.escape("base 'multcob03' must be upper case ('MULTCOB03')")):
        source_of("multcob03.1189.IMPORTACAO.CARGA.ACK")


def test_parse_work_topic_returns_the_parsed_name() -> None:
    assert parse_work_topic(WORK) == TopicName.parse(WORK)


@pytest.mark.parametrize("name", [f"{WORK}.ACK", f"{WORK}.DLQ", "", "__consumer_offsets", "MULTCOB03.X.IMPORTACAO.A"])
def test_parse_work_topic_ignores_derived_and_malformed_names(name: str) -> None:
    assert parse_work_topic(name) is None


def test_invalid_names_are_value_errors_of_ours() -> None:
    with pytest.raises(InvalidTopicName) as caught:
        TopicName.parse("nope")

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, XtreamingError)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("", "topic name is empty: expected BASE.CONVENIO.KIND.PROCESS", id="empty"),
        pytest.param(
            "MULTCOB03.1189.IMPORTACAO",
            "topic 'MULTCOB03.1189.IMPORTACAO': expected 4 parts BASE.CONVENIO.KIND.PROCESS separated by '.', got 3",
            id="three-parts",
        ),
        pytest.param(
            "MULTCOB03.1189.IMPORTACAO.CARGA.EXTRA",
            "expected 4 parts BASE.CONVENIO.KIND.PROCESS separated by '.', got 5",
            id="five-parts",
        ),
        pytest.param("MULTCOB03_1189_IMPORTACAO_CARGA", "expected 4 parts", id="no-dots"),
        pytest.param(".1189.IMPORTACAO.CARGA", "topic '.1189.IMPORTACAO.CARGA': base is empty", id="empty-base"),
        pytest.param("MULTCOB03..IMPORTACAO.CARGA", "convenio is empty", id="empty-convenio"),
        pytest.param("MULTCOB03.1189..CARGA", "kind is empty", id="empty-kind"),
        pytest.param("MULTCOB03.1189.IMPORTACAO.", "process is empty", id="empty-process"),
        pytest.param(
            "MULTCOB02.X1.IMPORTACAO.CARGA",
            "topic 'MULTCOB02.X1.IMPORTACAO.CARGA': convenio 'X1' must be digits (CODCONVENIO)",
            id="letters-in-convenio",
        ),
        pytest.param("MULTCOB02.-1.IMPORTACAO.CARGA", "convenio '-1' must be digits", id="negative-convenio"),
        pytest.param("MULTCOB02.1 .IMPORTACAO.CARGA", "convenio '1 ' must be digits", id="space-in-convenio"),
        pytest.param(
            "multcob03.1189.IMPORTACAO.CARGA",
            "topic 'multcob03.1189.IMPORTACAO.CARGA': base 'multcob03' must be upper case ('MULTCOB03')",
            id="lower-case-base",
        ),
        pytest.param(
            "MULTCOB03.1189.Importacao.CARGA",
            "kind 'Importacao' must be upper case ('IMPORTACAO')",
            id="mixed-case-kind",
        ),
        pytest.param(
            "MULTCOB03.1189.IMPORTACAO.ATUALIZA-BUREAU",
            "process 'ATUALIZA-BUREAU' has '-'; only A-Z, 0-9 and '_' are allowed",
            id="hyphen",
        ),
        pytest.param(
            "MULTCOB03.1189.IMPORTACAO.Atualiza Bureau",
            "process 'Atualiza Bureau' has ' '; only A-Z, 0-9 and '_' are allowed",
            id="space-and-lower-case",
        ),
        pytest.param("MULTCOB03.1189.IMPORTAÇÃO.CARGA", "kind 'IMPORTAÇÃO' has 'Ç'", id="accent"),
        pytest.param(
            f"{WORK}.ACK",
            f"topic '{WORK}.ACK' is a derived ACK topic, not a work topic BASE.CONVENIO.KIND.PROCESS",
            id="derived-ack",
        ),
        pytest.param(f"{WORK}.DLQ", "is a derived DLQ topic", id="derived-dlq"),
    ],
)
def test_invalid_names_say_which_part_is_wrong_and_why(name: str, message: str) -> None:
    with pytest.raises(InvalidTopicName, match=re.escape(message)):
        TopicName.parse(name)


def test_the_longest_work_topic_leaves_room_for_its_suffix() -> None:
    name = "B" * (MAX_WORK_TOPIC_LENGTH - len(".1.K.P")) + ".1.K.P"

    topic = TopicName.parse(name)

    assert len(name) == MAX_WORK_TOPIC_LENGTH == 245
    assert len(topic.dlq) == 249  # Kafka's limit


def test_a_name_one_character_too_long_is_refused_with_its_length() -> None:
    name = "B" * (MAX_WORK_TOPIC_LENGTH + 1 - len(".1.K.P")) + ".1.K.P"

    with pytest.raises(InvalidTopicName) as caught:
        TopicName.parse(name)

    message = str(caught.value)
    assert message.startswith(f"topic {'B' * 40!r}…: ")
    assert "246 characters, at most 245 (Kafka's limit of 249 less room for '.ACK'/'.DLQ')" in message
