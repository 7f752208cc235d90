"""Chunk sizes of many-row statements (``sql_chunks``): they cover every count with few distinct sizes."""

from __future__ import annotations

from xtreaming.sql_chunks import chunk_sizes, chunks, values_sql


def test_chunks_add_up_to_the_count_in_powers_of_two_never_above_the_largest() -> None:
    for count in range(0, 1100):
        sizes = list(chunk_sizes(count, 256))
        assert sum(sizes) == count
        assert all(size & (size - 1) == 0 and size <= 256 for size in sizes)
        assert sizes == sorted(sizes, reverse=True)
    assert list(chunk_sizes(300, 256)) == [256, 32, 8, 4]


def test_a_values_statement_has_a_row_of_markers_per_row() -> None:
    assert values_sql("INSERT INTO t (a, b)", 2, 3) == "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)"
    assert values_sql("INSERT INTO t (a)", 1, 1) == "INSERT INTO t (a) VALUES (?)"


def test_chunks_flatten_each_chunk_of_rows_in_order() -> None:
    rows = [(n, f"v{n}") for n in range(7)]

    assert list(chunks(rows, 4)) == [(4, [0, "v0", 1, "v1", 2, "v2", 3, "v3"]), (2, [4, "v4", 5, "v5"]), (1, [6, "v6"])]
