"""Identifiers: UUIDv7 (time-ordered, so inserts stay append-only in b-tree indexes)."""

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()
