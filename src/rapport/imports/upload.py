"""A multipart upload streamed straight to a file: the body is never held in memory, and an upload
past the size limit is refused (413) as soon as it crosses it, not after it has all arrived.

The app's body middleware lets the import route's body through unbuffered
(`core.http.STREAMED_PATHS`); this module is the only reader of that body.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from rapport.core.errors import AppError, BadRequest, PayloadTooLarge, UnsupportedMediaType

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 20
MAX_FILENAME = 255


class UploadRefused(AppError):
    status_code = 422
    code = "invalid_upload"
    message = "The upload is not valid."


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    size: int = 0


class _Parts:
    """python-multipart callbacks: small fields into memory, the one file part onto disk."""

    def __init__(self, destination: Path, max_bytes: int) -> None:
        self.destination = destination
        self.max_bytes = max_bytes
        self.upload = Upload()
        self.file: IO[bytes] | None = None
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name: str | None = None
        self._is_file = False
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._name = None
        self._is_file = False
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        raw_name = options.get(b"name")
        if raw_name is None:
            raise UploadRefused("Every part needs a Content-Disposition name.")
        self._name = raw_name.decode("utf-8", "replace")
        if b"filename" in options:
            if self._name != FILE_FIELD or self.file is not None:
                raise UploadRefused(f"Send one file, in the field `{FILE_FIELD}`.")
            filename = options[b"filename"].decode("utf-8", "replace")
            self.upload.filename = (
                Path(filename.replace("\\", "/")).name[:MAX_FILENAME] or "upload.csv"
            )
            self._is_file = True
            self.destination.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.destination.open("wb")
        elif len(self.upload.fields) >= MAX_FIELDS:
            raise UploadRefused(f"At most {MAX_FIELDS} form fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            assert self.file is not None
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                raise PayloadTooLarge(f"The file is larger than {self.max_bytes} bytes.")
            self.file.write(data[start:end])
            return
        self._data.extend(data[start:end])
        if len(self._data) > MAX_FIELD_BYTES:
            raise UploadRefused(f"A form field is larger than {MAX_FIELD_BYTES} bytes.")

    def on_part_end(self) -> None:
        if self._is_file:
            assert self.file is not None
            self.file.flush()
            return
        if self._name is not None:
            self.upload.fields[self._name] = self._data.decode("utf-8", "replace")


async def receive_upload(request: Request, destination: Path, max_bytes: int) -> Upload:
    """Parse the multipart body, writing the `file` part to `destination`. On any error the
    partial file is removed and the error raised (415, 400, 413 or 422)."""
    media, params = parse_options_header(request.headers.get("content-type", ""))
    if media != b"multipart/form-data":
        raise UnsupportedMediaType("Send the file as multipart/form-data.")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary.", code="invalid_multipart")
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and int(declared) > max_bytes + 2 * MAX_FIELDS * MAX_FIELD_BYTES
    ):
        raise PayloadTooLarge(f"The file is larger than {max_bytes} bytes.")
    parts = _Parts(destination, max_bytes)
    callbacks = {
        "on_part_begin": parts.on_part_begin,
        "on_part_data": parts.on_part_data,
        "on_part_end": parts.on_part_end,
        "on_header_field": parts.on_header_field,
        "on_header_value": parts.on_header_value,
        "on_header_end": parts.on_header_end,
        "on_headers_finished": parts.on_headers_finished,
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        _discard(parts, destination)
        raise BadRequest("The multipart body is malformed.", code="invalid_multipart") from exc
    except BaseException:  # too large, a refused part, the client gone: nothing is kept
        _discard(parts, destination)
        raise
    if parts.file is not None:
        parts.file.close()
    if parts.upload.filename is None:
        _discard(parts, destination)
        raise UploadRefused(
            "Send the CSV file in the field `file`.",
            details=[{"field": f"body.{FILE_FIELD}", "reason": "is required"}],
        )
    return parts.upload


def _discard(parts: _Parts, destination: Path) -> None:
    if parts.file is not None:
        parts.file.close()
    with contextlib.suppress(FileNotFoundError):
        destination.unlink()
