"""CSV loads: the checking pass, rows → records, rejected rows with their line numbers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from xtreaming.csv_source import CsvFile, Rejects, ValueFormat
from xtreaming.errors import InvalidInput
from xtreaming.keys import MAX_KEY_BYTES


def write(tmp_path: Path, content: str | bytes, name: str = "carteira.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def load(source: CsvFile) -> tuple[list[tuple[int, bytes, bytes]], Rejects]:
    rejects = Rejects()
    layout = source.check_file()
    rows = [(line, r.key or b"", r.value) for line, r in source.records(layout, rejects)]
    return rows, rejects


def test_rows_become_json_objects_keyed_by_the_column(tmp_path: Path) -> None:
    path = write(tmp_path, "cpf;nome\n111;Ana\n222;João\n")

    rows, rejects = load(CsvFile(path, "cpf"))

    assert [(line, key) for line, key, _ in rows] == [(2, b"111"), (3, b"222")]
    assert json.loads(rows[1][2]) == {"cpf": "222", "nome": "João"}
    assert rejects.count == 0


def test_raw_values_are_the_lines_untouched(tmp_path: Path) -> None:
    path = write(tmp_path, 'cpf,nome,obs\r\n111,"Silva, Ana",x\r\n222,Bruno,  y  \r\n')

    rows, _ = load(CsvFile(path, "cpf", ValueFormat.RAW))

    assert [value for _, _, value in rows] == [b'111,"Silva, Ana",x', b"222,Bruno,  y  "]


def test_a_value_column_is_passed_through_untouched(tmp_path: Path) -> None:
    xml = '<cliente cpf="111"><nome>Ana</nome></cliente>'
    path = write(tmp_path, f"cpf;xml\n111;{xml}\n")

    rows, _ = load(CsvFile(path, "cpf", value_column="xml"))

    assert rows[0][2] == xml.encode()


def test_rows_without_a_key_are_rejected_with_their_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "cpf,nome\n111,Ana\n,Bruno\n  ,Carla\n444,Diego\n")

    rows, rejects = load(CsvFile(path, "cpf"))

    assert [key for _, key, _ in rows] == [b"111", b"444"]
    assert rejects.samples == ["line 3: column 'cpf' is empty", "line 4: column 'cpf' is empty"]


def test_rows_with_the_wrong_field_count_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "cpf,nome\n111,Ana,extra\n222,Bruno\n")

    rows, rejects = load(CsvFile(path, "cpf"))

    assert [key for _, key, _ in rows] == [b"222"]
    assert rejects.samples == ["line 2: 3 fields, the header has 2"]


def test_line_numbers_count_quoted_line_breaks(tmp_path: Path) -> None:
    path = write(tmp_path, 'cpf,obs\n111,"one\ntwo"\n,missing\n')

    _, rejects = load(CsvFile(path, "cpf"))

    assert rejects.samples == ["line 4: column 'cpf' is empty"]


def test_raw_mode_rejects_a_quoted_field_spanning_lines(tmp_path: Path) -> None:
    path = write(tmp_path, 'cpf,obs\n111,"one\ntwo"\n222,ok\n')

    rows, rejects = load(CsvFile(path, "cpf", ValueFormat.RAW))

    assert [key for _, key, _ in rows] == [b"222"]
    assert rejects.samples[0].startswith("line 2: a quoted field spans lines")


def test_the_delimiter_is_guessed_from_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "nome|cpf\nAna|111\n")

    rows, _ = load(CsvFile(path, "cpf"))

    assert rows[0][1] == b"111"


def test_a_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffcpf,nome\n111,Ana\n".encode())

    rows, _ = load(CsvFile(path, "cpf"))

    assert rows[0][1] == b"111"


def test_cp1252_files_are_read_with_their_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "cpf;nome\n111;Conceição\n".encode("cp1252"))

    rows, _ = load(CsvFile(path, "cpf", encoding="cp1252"))

    assert json.loads(rows[0][2])["nome"] == "Conceição"


def test_non_utf8_bytes_are_reported_with_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "cpf;nome\n111;Ana\n222;Concei\xe7\xe3o\n".encode("latin-1"))

    with pytest.raises(InvalidInput, match=r"carteira.csv line 3, column 11: byte 0xe7 is not valid utf-8.*cp1252"):
        CsvFile(path, "cpf").check_file()


def test_a_bad_byte_after_the_first_chunk_is_located_exactly(tmp_path: Path) -> None:
    rows = "".join(f"{i:011d};nome\n" for i in range(100_000))  # ~1.7 MB: past the 1 MiB chunk
    path = write(tmp_path, b"cpf;nome\n" + rows.encode() + b"99;\xff\n")

    with pytest.raises(InvalidInput, match=r"line 100002, column 4: byte 0xff"):
        CsvFile(path, "cpf").check_file()


def test_a_truncated_multibyte_character_at_the_end_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, b"cpf;nome\n111;Jo\xc3")

    with pytest.raises(InvalidInput, match=r"line 2, column 7: byte 0xc3"):
        CsvFile(path, "cpf").check_file()


def test_a_missing_key_column_lists_the_columns_found(tmp_path: Path) -> None:
    path = write(tmp_path, "documento,nome\n111,Ana\n")

    with pytest.raises(
        InvalidInput, match=r"line 1: no key column 'cpf' in the header \(columns: 'documento', 'nome'\)"
    ):
        CsvFile(path, "cpf").check_file()


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"carteira\.csv is empty"):
        CsvFile(write(tmp_path, ""), "cpf").check_file()


def test_a_header_without_rows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="has a header but no rows"):
        CsvFile(write(tmp_path, "cpf,nome\n"), "cpf").check_file()


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot read .*nao-existe.csv: No such file"):
        CsvFile(tmp_path / "nao-existe.csv", "cpf").check_file()


def test_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown encoding 'klingon'"):
        CsvFile(write(tmp_path, "cpf\n1\n"), "cpf", encoding="klingon").check_file()


def test_the_check_counts_lines_for_the_progress_bar(tmp_path: Path) -> None:
    layout = CsvFile(write(tmp_path, "cpf\n1\n2\n3"), "cpf").check_file()

    assert layout.lines == 4


def test_json_values_match_the_json_module_for_awkward_text(tmp_path: Path) -> None:
    awkward = 'aspas "duplas", barra \\ , tab\t, ção, emoji 🎉, controle \x01'
    path = tmp_path / "c.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([["cpf", "obs"], ["111", awkward]])

    rows, _ = load(CsvFile(path, "cpf"))

    assert rows[0][2].decode() == json.dumps({"cpf": "111", "obs": awkward}, ensure_ascii=False, separators=(",", ":"))


def test_a_repeated_column_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="column 'nome' appears more than once"):
        CsvFile(write(tmp_path, "cpf,nome,nome\n1,a,b\n"), "cpf").check_file()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delimiter": ";;"}, "delimiter ';;': give one character"),
        ({"delimiter": '"'}, "delimiter '\"': give one character"),
        ({"value_format": ValueFormat.RAW, "value_column": "xml"}, "value format 'raw' publishes whole lines"),
    ],
    ids=["two-characters", "quote", "raw-and-value-column"],
)
def test_options_that_cannot_work_together_are_refused_at_once(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        CsvFile(write(tmp_path, "cpf\n1\n"), "cpf", **options)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            'cpf,obs\n1,a\n2,"b\n3,c\n',
            "line 3: a quoted field opened on this line is never closed (a closing quote is missing?): "
            "it runs to the end of the file",
        ),
        (
            'cpf,obs\n1,a\n2,"b\n3,"c",x\n',
            "line 3: a quoted field opened on this line is never closed (a closing quote is missing?): "
            "the reader stopped on line 4",
        ),
        ('cpf,obs\n1,"a"b\n2,c\n', "line 2: text after a closing quote"),
        ("cpf,obs\n1," + "x" * 131_073 + "\n2,c\n", "line 2: a field is longer than 131,072 characters"),
        ('cpf,"obs"x\n1,a\n', "line 1: text after a closing quote"),
    ],
    ids=["quote-open-to-the-end", "quote-open-to-the-next", "text-after-a-quote", "field-too-long", "bad-header"],
)
def test_the_check_stops_where_the_reader_would_with_the_line(tmp_path: Path, content: str, message: str) -> None:
    source = CsvFile(write(tmp_path, content), "cpf")

    with pytest.raises(InvalidInput, match=re.escape(message)):
        source.check_file()


def test_what_the_check_passes_streams_to_the_end_and_what_would_stop_the_stream_fails_the_check(
    tmp_path: Path,
) -> None:
    awkward = write(tmp_path, 'cpf,obs\n1,"a\nb"\n2,' + "x" * 131_073 + '\n3,"c"d\n4,"e\n5,ok\n')
    raw, as_json = CsvFile(awkward, "cpf", ValueFormat.RAW), CsvFile(awkward, "cpf")

    layout = raw.check_file()  # raw rows are judged line by line: the odd ones are rejects
    streamed = [line for line, _ in raw.records(layout, Rejects())]

    assert (streamed, layout.rows) == ([4, 7], 2)
    with pytest.raises(InvalidInput, match="line 4: a field is longer than 131,072 characters"):
        as_json.check_file()


def test_raw_rows_the_csv_reader_cannot_split_are_rejected_by_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'cpf,obs\n1,"' + "x" * 131_073 + '"\n2,"a"b\n3,ok\n')

    rows, rejects = load(CsvFile(path, "cpf", ValueFormat.RAW))

    assert [key for _, key, _ in rows] == [b"3"]
    assert rejects.samples[0] == "line 2: a field is longer than 131,072 characters, the most a CSV field may hold"
    assert rejects.samples[1].startswith("line 3: text after a closing quote")


def test_rows_whose_message_is_over_the_broker_limit_are_named_by_line(tmp_path: Path) -> None:
    big = "x" * 1_100_000
    path = write(tmp_path, f"cpf,obs\n1,a\n2,{big}\n3,b\n4,{big}\n")

    with pytest.raises(
        InvalidInput,
        match=r"line 3: its message is 1,100,039 bytes, more than the broker takes \(1,000,000 bytes.*line 5",
    ):
        CsvFile(path, "cpf", ValueFormat.RAW).check_file(1_000_000)
    assert CsvFile(path, "cpf", ValueFormat.RAW).check_file().rows == 4  # no limit: every row fits


def test_keys_follow_the_one_rule_of_every_publisher(tmp_path: Path) -> None:
    long_key = "9" * (MAX_KEY_BYTES + 1)
    path = write(tmp_path, f"cpf,nome\n111,Ana\n{long_key},Bruno\n{'9' * MAX_KEY_BYTES},Carla\n")

    rows, rejects = load(CsvFile(path, "cpf"))

    assert [line for line, _, _ in rows] == [2, 4]
    assert rejects.samples == [f"line 3: column 'cpf' is 1,025 bytes long; a key is at most {MAX_KEY_BYTES:,} bytes"]


def test_a_file_without_a_usable_row_is_refused_by_the_check(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInput, match=r"no row can become a message \(line 2: column 'cpf' is empty; line 3: 1 fields"
    ):
        CsvFile(write(tmp_path, "cpf,nome\n,Ana\nBruno\n"), "cpf").check_file()


def test_the_check_sizes_a_row_by_its_json_not_by_its_text(tmp_path: Path) -> None:
    escaped = "\x01" * 85_000  # 85,000 characters, 510,000 bytes of JSON (\u0001 each)
    path = tmp_path / "c.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([["cpf", "a", "b"], ["111", "ok", "ok"], ["222", escaped, escaped]])

    with pytest.raises(InvalidInput, match=r"line 3: its message is 1,020,06\d bytes"):
        CsvFile(path, "cpf").check_file(1_000_000)
    assert CsvFile(path, "cpf").check_file(1_100_000).rows == 2


def test_from_line_publishes_the_rest_of_a_file_the_check_still_reads_whole(tmp_path: Path) -> None:
    path = write(tmp_path, "cpf,nome\n111,Ana\n,sem chave\n333,Carla\n444,Diego\n")

    rows, rejects = load(CsvFile(path, "cpf", from_line=4))

    assert [(line, key) for line, key, _ in rows] == [(4, b"333"), (5, b"444")]
    assert rejects.count == 0  # line 3 is before the rows published: not judged again
    with pytest.raises(InvalidInput, match="line 2: a quoted field opened on this line is never closed"):
        CsvFile(write(tmp_path, 'cpf,nome\n1,"Ana\n2,b\n', "aspas.csv"), "cpf", from_line=3).check_file()
    with pytest.raises(InvalidInput, match=r"no row can become a message \(none begins on line 9 or after\)"):
        CsvFile(path, "cpf", from_line=9).check_file()
