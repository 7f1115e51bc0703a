"""What kind of text a file to import is: binary, its encoding, its delimiter."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnwatch.offline.sniffing import NotText, checked_delimiter, sniff


def test_the_delimiter_and_the_encoding_are_found(tmp_path: Path) -> None:
    tabbed = tmp_path / "t.csv"
    tabbed.write_text("customer_id\tts\tamount\nc1\t2026-01-01T00:00:00Z\t3\n")
    found = sniff(tabbed, csv_file=True)
    assert (found.encoding, found.delimiter, found.detected) == ("utf-8-sig", "\t", True)
    wide = tmp_path / "w.csv"
    wide.write_bytes("a;b\nM\u00fcller;1\n".encode("utf-16"))  # with its byte-order mark
    assert sniff(wide, csv_file=True).encoding == "utf-16"
    given = sniff(tabbed, encoding="latin-1", delimiter=",", csv_file=True)
    assert (given.encoding, given.delimiter, given.detected) == ("iso8859-1", ",", False)


def test_western_text_as_likely_in_several_code_pages_is_cp1252(tmp_path: Path) -> None:
    # Œ is a byte that cp1250 reads as Ś: charset-normalizer finds both equally likely
    export = tmp_path / "e.csv"
    rows = "".join(f"c{i};C\u0152UR \u00e9t\u00e9;{i}\n" for i in range(300))
    export.write_bytes(("customer_id;product;amount\n" + rows).encode("cp1252"))
    assert sniff(export, csv_file=True).encoding == "cp1252"


def test_a_binary_file_is_named_by_its_first_bytes(tmp_path: Path) -> None:
    workbook = tmp_path / "sales.csv"
    workbook.write_bytes(b"PK\x03\x04" + bytes(512))
    with pytest.raises(NotText, match=r"sales.csv is a binary file, not text \(a ZIP archive"):
        sniff(workbook, csv_file=True)


def test_a_delimiter_is_one_character() -> None:
    assert checked_delimiter("tab") == checked_delimiter("\\t") == "\t"
    with pytest.raises(ValueError, match="give one character"):
        checked_delimiter(";;")
