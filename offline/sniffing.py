"""What kind of text a file to import is: binary or not, its encoding, its CSV delimiter.

The encoding is UTF-8 when the file's first part decodes as UTF-8, else what
charset-normalizer finds (cp1252 when it is among the likeliest); the delimiter
is what :class:`csv.Sniffer` finds in the first lines among ``, ; TAB |``. A
file with NUL bytes (and no UTF-16/32 byte-order mark) is binary: a gzip, ZIP
(Excel) or Parquet file named ``.csv``, say, and is named as such.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path

#: bytes read to judge a file: enough for many rows, little for a large file
SAMPLE_BYTES = 256 * 1024
#: lines csv.Sniffer judges the delimiter by
SNIFF_LINES = 50
#: the delimiters a CSV export uses in practice
DELIMITERS = ",;\t|"
#: what the first bytes of a binary file say it is, to name it
_MAGIC = (
    (b"\x1f\x8b", "a gzip archive: unpack it first"),
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook: unpack it, or save the sheet as CSV"),
    (b"PAR1", "a Parquet file: name it .parquet"),
    (b"SQLite format 3\x00", "a SQLite database"),
)
_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class NotText(ValueError):
    """The file is not text in any encoding churnwatch can read."""


@dataclass(frozen=True)
class TextFormat:
    """How to read a text file: its encoding, and its CSV delimiter (``None``: not CSV)."""

    encoding: str
    delimiter: str | None = None
    #: the encoding was found, not given
    detected: bool = False


def checked_encoding(name: str) -> str:
    """``name`` as Python's codec name; :class:`ValueError` for one Python does not know."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (e.g. utf-8, cp1252, latin-1)") from None


def checked_delimiter(value: str) -> str:
    """One character (``\\t`` or ``tab`` for a tab); :class:`ValueError` otherwise."""
    delimiter = "\t" if value in ("\\t", "tab", "TAB") else value
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise ValueError(f"delimiter {value!r}: give one character, e.g. ';' or tab")
    return delimiter


def sniff(
    path: Path, *, encoding: str | None = None, delimiter: str | None = None, csv_file: bool
) -> TextFormat:
    """The text format of ``path``: the given encoding and delimiter, or the ones it has.

    Raises :class:`NotText` for a binary file, naming what it looks like.
    """
    with path.open("rb") as f:
        sample = f.read(SAMPLE_BYTES)
        whole = not f.read(1)
    if encoding is None:
        encoding = _detected_encoding(path, sample, whole)
        detected = True
    else:
        encoding, detected = checked_encoding(encoding), False
    if not csv_file:
        return TextFormat(encoding, None, detected)
    if delimiter is None:
        text = sample.decode(encoding, errors="replace")
        lines = (text if whole else text.rpartition("\n")[0]).splitlines()
        # csv.Sniffer's regular expressions take seconds on a large sample: a few lines
        delimiter = _sniffed_delimiter("\n".join(lines[:SNIFF_LINES]))
    return TextFormat(encoding, delimiter, detected)


def _detected_encoding(path: Path, sample: bytes, whole: bool) -> str:
    if b"\x00" in sample and not sample.startswith(_BOMS):
        raise NotText(_binary(path, sample))
    # a cut sample may end inside a character: judge it up to its last line break
    judged = sample if whole else sample[: sample.rfind(b"\n") + 1] or sample
    try:
        judged.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8-sig"  # UTF-8, with or without a byte-order mark
    from charset_normalizer import from_bytes

    matches = from_bytes(judged)
    best = matches.best()
    if best is None:
        raise NotText(_binary(path, sample))
    # Western text is often as likely in several code pages (é is é in cp1250 too):
    # among the equally likely ones, Windows' Western code page, Excel's usual export
    ties = (m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence))
    if any("cp1252" in m.could_be_from_charset for m in ties):
        return "cp1252"
    return checked_encoding(best.encoding)


def first_bad_line(path: Path, encoding: str) -> int | None:
    """The number of the first line of ``path`` that is not ``encoding`` text, if any."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return number
    return None


def shown(encoding: str) -> str:
    """An encoding as a person names it: ``utf-8-sig`` is UTF-8 (with or without a BOM)."""
    return "UTF-8" if encoding in ("utf-8", "utf-8-sig") else encoding


def _binary(path: Path, sample: bytes) -> str:
    what = next((name for magic, name in _MAGIC if sample.startswith(magic)), None)
    return f"{path.name} is a binary file, not text" + (f" ({what})" if what else "")


def _sniffed_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:  # one column, or too little text to tell: the CSV default
        return ","
