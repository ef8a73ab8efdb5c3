"""Reading an uploaded CSV file as a stream of records that know where they are.

The stdlib `csv` reader pulls physical lines from an iterator only as far as the current record
needs (a quoted cell may span lines), so counting the lines and bytes handed to it gives, after
each record, the physical line it started on and the byte offset just past it. A resumed import
seeks to a stored offset and carries on from the same line number, without rereading the file.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BOM = codecs.BOM_UTF8
ENCODINGS = ("utf-8", "cp1252", "latin-1")


class CsvFileError(Exception):
    """The file itself cannot be read as CSV at `line` (not one bad row: the import stops)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Record:
    line: int  # the physical line the record starts on (the header is line 1)
    values: list[str]
    end_offset: int  # bytes from the start of the file to just past this record
    end_line: int  # the last physical line the record used


class RecordReader:
    """Records from `offset` on; `lines` is how many physical lines precede that offset."""

    def __init__(
        self,
        path: Path,
        *,
        encoding: str = "utf-8",
        delimiter: str = ",",
        offset: int = 0,
        lines: int = 0,
    ) -> None:
        self._file: BinaryIO = path.open("rb")
        self._file.seek(offset)
        self.encoding = encoding
        self.offset = offset
        self.lines = lines
        # strict: a stray quote is an error at its line, not a cell that swallows the file
        self._reader = csv.reader(self._source(), delimiter=delimiter, strict=True)

    def _source(self) -> Iterator[str]:
        for raw in self._file:
            if self.offset == 0 and raw.startswith(BOM):
                self.offset += len(BOM)
                raw = raw[len(BOM) :]
            self.offset += len(raw)
            self.lines += 1
            try:
                yield raw.decode(self.encoding)
            except UnicodeDecodeError as exc:
                raise CsvFileError(
                    self.lines, f"is not valid {self.encoding} (choose the file's encoding)"
                ) from exc

    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        """The next record that is not a blank line."""
        while True:
            start = self.lines + 1
            try:
                values = next(self._reader)
            except csv.Error as exc:
                raise CsvFileError(start, f"is not valid CSV ({exc})") from exc
            if values and any(v.strip() for v in values):
                return Record(start, values, self.offset, self.lines)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_header(path: Path, *, encoding: str, delimiter: str) -> Record | None:
    """The first record (the column names), or None for a file without one."""
    with RecordReader(path, encoding=encoding, delimiter=delimiter) as reader:
        return next(reader, None)
