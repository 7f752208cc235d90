"""``xtreaming publish`` as a user runs it: a real process, exit codes, messages, what the log holds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.services import Tansu
from tests.waiting import wait_until
from xtreaming.broker import open_broker
from xtreaming.coordinator.api.auth import hash_token

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

    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert message_count(broker_url) == 0


def test_a_missing_file_is_named(tmp_path: Path, broker_url: str) -> None:
    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(tmp_path / "nada.csv"))

    assert result.returncode == 2
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


def topic_names(broker_url: str) -> list[str]:
    log = open_broker(broker_url)
    try:
        return log.list_topics()
    finally:
        log.close()


def portfolio(path: Path, rows: int, *, odd_line: int, odd_row: str, header: str = "cpf,nome") -> Path:
    """A CSV file of ``rows`` rows after its header, with ``odd_row`` as line ``odd_line``."""
    width = header.count(",")
    lines = [header] + [f"{n:011d}" + ",Ana" * width for n in range(2, rows + 2)]
    lines[odd_line - 1] = odd_row
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_field_over_the_csv_limit_is_named_by_line_and_nothing_is_written(tmp_path: Path, broker_url: str) -> None:
    csv = portfolio(tmp_path / "carteira.csv", 30_000, odd_line=20_000, odd_row="20000," + "x" * 131_073)

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv))

    assert result.returncode == 2, result.stderr
    assert "line 20000: a field is longer than 131,072 characters" in result.stderr
    assert "Traceback" not in result.stderr
    assert topic_names(broker_url) == []


def test_an_unbalanced_quote_is_named_by_line_and_nothing_is_written(tmp_path: Path, broker_url: str) -> None:
    csv = portfolio(tmp_path / "carteira.csv", 60_000, odd_line=40_000, odd_row='40000,"Ana')

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv))

    assert result.returncode == 2, result.stderr
    assert "line 40000: a quoted field opened on this line is never closed" in result.stderr
    assert "Traceback" not in result.stderr
    assert topic_names(broker_url) == []


@pytest.mark.kafka
@pytest.mark.slow
def test_a_row_too_large_for_kafka_is_named_before_anything_is_written(tmp_path: Path, tansu: Tansu) -> None:
    header = ",".join(["cpf", *(f"obs{i}" for i in range(9))])
    big = "6000," + ",".join(["x" * 125_000] * 9)  # each field within the CSV limit, the row over 1,000,000 bytes
    csv = portfolio(tmp_path / "carteira.csv", 10_000, odd_line=6_000, odd_row=big, header=header)
    topic = f"MULTCOB03.1189.IMPORTACAO.GRANDE_{uuid.uuid4().hex[:8].upper()}"

    result = xtreaming(tansu.url, "publish", topic, "--csv", str(csv))

    assert result.returncode == 2, result.stderr
    assert "line 6000: its message is 1,125," in result.stderr
    assert "more than the broker takes (1,000,000 bytes" in result.stderr
    assert topic not in topic_names(tansu.url)


@pytest.mark.kafka
@pytest.mark.slow
def test_a_broker_lost_mid_run_exits_1_saying_which_lines_are_in_the_log_and_the_run_can_be_finished(
    tmp_path: Path, fresh_tansu: Tansu
) -> None:
    rows = 100_000
    csv = portfolio(tmp_path / "carteira.csv", rows, odd_line=2, odd_row="00000000002,Ana")
    broker_url = f"{fresh_tansu.url}?timeout_s=3"  # confirmations come late on a loaded machine
    command = [sys.executable, "-m", "xtreaming", "publish", TOPIC, "--csv", str(csv), "--batch-size", "200"]
    env = {**os.environ, "XTREAMING_BROKER_URL": broker_url, "COLUMNS": "400"}
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: message_count(broker_url) >= 5_000, 30, "several batches in the log", every_s=0.05)
        fresh_tansu.pause()
        _, stderr = run.communicate(timeout=60)
    finally:
        fresh_tansu.resume()
        run.kill()
        run.wait()

    assert run.returncode == 1, stderr
    said = re.search(r"Rows of lines 2–(\d+) are in the log \(([\d,]+) messages, the topic's first\)", stderr)
    assert said is not None, stderr
    assert "were not written" in stderr
    assert "Traceback" not in stderr
    last_line, written = int(said[1]), int(said[2].replace(",", ""))
    assert written == last_line - 1
    assert written <= message_count(broker_url) <= written + 200  # at most part of the batch being appended
    assert f"To finish, publish the file again with --from-line {last_line + 1}" in stderr

    finished = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv), "--from-line", str(last_line + 1))

    assert finished.returncode == 0, finished.stderr
    assert f"published {rows - written:,} messages" in finished.stdout
    assert rows <= message_count(broker_url) <= rows + 200


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (("--delimiter", ";;"), "delimiter ';;': give one character"),
        (("--value-format", "raw", "--value-column", "nome"), "value format 'raw' publishes whole lines"),
        (("--partitions", "100000"), "Invalid value for '--partitions': Input should be less than or equal to 1024"),
    ],
    ids=["two-character-delimiter", "raw-with-a-value-column", "too-many-partitions"],
)
def test_options_that_cannot_work_exit_2_before_anything_is_written(
    tmp_path: Path, broker_url: str, options: tuple[str, ...], says: str
) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf,nome\n111,Ana\n")

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv), *options)

    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert topic_names(broker_url) == []


def test_a_file_without_a_single_key_creates_no_topic(tmp_path: Path, broker_url: str) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf,nome\n,Ana\n  ,Bruno\n")

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv))

    assert result.returncode == 2, result.stderr
    assert "no row can become a message (line 2: column 'cpf' is empty; line 3: column 'cpf' is empty)" in (
        result.stderr
    )
    assert topic_names(broker_url) == []


@pytest.mark.parametrize(("value_format", "key_bytes"), [("json", 5_000), ("raw", 5_000_000)], ids=["json", "raw-5MB"])
def test_a_key_longer_than_the_api_takes_is_a_rejected_row(
    tmp_path: Path, broker_url: str, value_format: str, key_bytes: int
) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text(f"cpf,nome\n111,Ana\n{'9' * key_bytes},Bruno\n")

    result = xtreaming(broker_url, "publish", TOPIC, "--csv", str(csv), "--value-format", value_format)

    assert result.returncode == 3, result.stderr
    assert f"rejected line 3: column 'cpf' is {key_bytes:,} bytes long; a key is at most 1,024 bytes" in result.stdout
    assert message_count(broker_url) == 1


@pytest.mark.parametrize("options", [(), ("--json",)], ids=["piped", "json"])
def test_token_prints_one_json_line_when_piped(broker_url: str, options: tuple[str, ...]) -> None:
    name = "integracao-" + "x" * 90  # past 80 columns: a terminal-width wrap would break the JSON

    result = xtreaming(broker_url, "token", "--name", name, "--role", "operator", *options)

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    printed = json.loads(result.stdout)
    assert (printed["name"], printed["role"], printed["entry"]["name"]) == (name, "operator", name)
    assert printed["entry"]["sha256"] == hash_token(printed["token"])
