from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from rapport.migrations.models import RAW_SQL_INDEXES, metadata

config = context.config


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    if type_ == "index" and reflected and compare_to is None and name in RAW_SQL_INDEXES:
        return False
    return not (type_ == "table" and reflected and name and name.startswith("search_fts"))


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=_include,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    from rapport.migrations.runner import migration_engine

    engine = migration_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_configure)
        await conn.commit()
    await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    asyncio.run(_run_with_url(config.get_main_option("sqlalchemy.url")))


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run `rapport db upgrade`.")
run()
