"""``xtreaming publish`` as a user runs it: a real process, exit codes, messages, what the log holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xtreaming.broker import open_broker

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


@pytest.fixture
def broker_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/log.db"


def xtreaming(broker_url: str, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XTREAMING_BROKER_URL": broker_url, "COLUMNS": "200", **variables}
    return subprocess.run(
        [sys.executable, "-m", "xtreaming", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def message_count(broker_url: str) -> int:
    log = open_broker(broker_url)
    try:
        return sum(sum(log.end_offsets(t).values()) for t in log.list_topics())
    finally:
        log.close()


def test_publish_forms_one_message_per_cpf(tmp_path: Path, broker_url: str) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf;nome\n111;Ana\n222;Bruno\n111;Ana de novo\n")

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv), "--key-column", "cpf")

    assert result.returncode == 0, result.stderr
    assert "published 2 messages" in result.stdout
    assert "duplicates dropped: 1" in result.stdout
    assert "duplicate keys (first 1): 111" in result.stdout
    assert message_count(broker_url) == 2


def test_rejected_rows_are_listed_and_exit_3(tmp_path: Path, broker_url: str) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf,nome\n111,Ana\n,Sem CPF\n333,Carla\n")

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv))

    assert result.returncode == 3, result.stderr
    assert "rejected line 3: column 'cpf' is empty" in result.stdout
    assert message_count(broker_url) == 2


@pytest.mark.parametrize(
    ("topic", "content", "expected"),
    [
        ("multcob03.1189.IMPORTACAO.X", b"cpf\n1\n", "base 'multcob03' must be upper case"),
        (TOPIC, b"nome\nAna\n", "no key column 'cpf' in the header"),
        (TOPIC, b"cpf;nome\n1;Ana\n2;Jo\xe3o\n", "line 3, column 5: byte 0xe3 is not valid utf-8"),
        (TOPIC, b"", "is empty"),
    ],
    ids=["invalid-topic", "missing-key-column", "non-utf8", "empty-file"],
)
def test_bad_input_fails_with_a_clear_message_and_writes_nothing(
    tmp_path: Path, broker_url: str, topic: str, content: bytes, expected: str
) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_bytes(content)

    result = xtreaming(broker_url, "publish", topic, "--csv", str(csv))

    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert message_count(broker_url) == 0


def test_a_missing_file_is_named(tmp_path: Path, broker_url: str) -> None:
    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(tmp_path / "nada.csv"))

    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert "nada.csv" in result.stderr


def partition_count(broker_url: str, topic: str) -> int:
    log = open_broker(broker_url)
    try:
        return log.partition_count(topic)
    finally:
        log.close()


def test_a_new_topic_gets_the_configured_default_partitions_unless_told(tmp_path: Path, broker_url: str) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf\n1\n2\n")

    configured = {"XTREAMING_DEFAULT_PARTITIONS": "3"}

    by_default = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv), **configured)
    told = xtreaming(broker_url, "publish", f"{TOPIC}_2", "--csv", str(csv), "--partitions", "2", **configured)

    assert (by_default.returncode, told.returncode) == (0, 0), by_default.stderr + told.stderr
    assert (partition_count(broker_url, TOPIC), partition_count(broker_url, f"{TOPIC}_2")) == (3, 2)


def test_invalid_settings_fail_in_a_sentence_and_write_nothing(tmp_path: Path, broker_url: str) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf\n1\n")

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv), XTREAMING_DEFAULT_PARTITIONS="0")

    assert result.returncode == 1
    assert "invalid settings: default_partitions: Input should be greater than or equal to 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert message_count(broker_url) == 0


def test_topics_lists_counts(tmp_path: Path, broker_url: str) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf\n1\n2\n3\n")
    xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv), "--partitions", "2")

    result = xtreaming(broker_url, "topics")

    assert result.returncode == 0, result.stderr
    assert TOPIC in result.stdout
    assert "│ 2 " in result.stdout
    assert "│ 3 " in result.stdout
