"""What a database error means for a client, whichever way the statement was run."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE classes that mean "the database is not there right now", not "the request is wrong":
# connection exceptions, operator intervention (shutting down, cannot connect now, statement
# cancelled by a restart), insufficient resources (too many connections).
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57", "53")


def is_unavailable(exc: BaseException) -> bool:
    """Whether a database error means the database is unreachable or going away (503)."""
    if isinstance(exc, OperationalError | PoolTimeoutError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig  # type: ignore[assignment]
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    return sqlstate[:2] in UNAVAILABLE_SQLSTATE_CLASSES or isinstance(exc, OSError)


def driver_error(statement: str | None, params: Any, exc: Exception) -> DBAPIError:
    """A driver's own exception (from a statement run outside SQLAlchemy's execution) as the
    SQLAlchemy error the app's handlers map: unavailable → OperationalError, constraint →
    IntegrityError, anything else → DBAPIError, the original kept as `orig`."""
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    if isinstance(exc, DBAPIError):
        return exc
    lost = {"InterfaceError", "InternalClientError"} & {k.__name__ for k in type(exc).__mro__}
    if is_unavailable(exc) or lost:  # the server went away, or the connection is unusable
        return OperationalError(statement, params, exc, connection_invalidated=True)
    if sqlstate.startswith("23"):
        return IntegrityError(statement, params, exc)
    return DBAPIError(statement, params, exc)


def is_deadlock(exc: BaseException) -> bool:
    """Whether PostgreSQL chose this transaction as a deadlock's victim (SQLSTATE 40P01): what it
    did is rolled back and may simply be done again."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig  # type: ignore[assignment]
    return str(getattr(exc, "sqlstate", None) or "") == "40P01"
