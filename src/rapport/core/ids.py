"""Identifiers: UUIDv7 (time-ordered, so inserts stay append-only in b-tree indexes)."""

import uuid

import uuid_utils
from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()


def new_hex_id() -> str:
    """A UUIDv7 as 32 hex digits (a request id), without the stdlib UUID in between."""
    return uuid_utils.uuid7().hex
