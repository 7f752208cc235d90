"""``publish_csv`` against a broker with a record limit: a row too large is named before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from xtreaming.broker.sqlite import SqliteBroker
from xtreaming.csv_source import CsvFile, ValueFormat
from xtreaming.errors import InvalidInput
from xtreaming.publishing import publish_csv

TOPIC = "MULTCOB03.1189.IMPORTACAO.ATUALIZA_BUREAU"


def test_a_row_over_the_brokers_record_limit_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    rows = [f"{n:011d},Ana" for n in range(2, 12_002)]
    rows[6_000 - 2] = "6000," + "x" * 1_100_000  # line 6000: raw values have no CSV field limit
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf,nome\n" + "\n".join(rows) + "\n")
    log = SqliteBroker(tmp_path / "log.db")
    log.max_record_bytes = 1_000_000  # as a Kafka producer's message.max.bytes
    try:
        with pytest.raises(InvalidInput, match=r"carteira\.csv line 6000: its message is 1,100,045 bytes"):
            publish_csv(CsvFile(csv, "cpf", ValueFormat.RAW), TOPIC, log, batch_size=1_000)

        assert log.list_topics() == []
    finally:
        log.close()


def test_the_same_file_is_published_whole_by_a_broker_without_a_limit(tmp_path: Path) -> None:
    csv = tmp_path / "carteira.csv"
    csv.write_text("cpf,nome\n1,Ana\n2," + "x" * 1_100_000 + "\n")
    log = SqliteBroker(tmp_path / "log.db")
    try:
        outcome = publish_csv(CsvFile(csv, "cpf", ValueFormat.RAW), TOPIC, log)

        assert outcome.report.published == 2
        assert sum(log.end_offsets(TOPIC).values()) == 2
    finally:
        log.close()
