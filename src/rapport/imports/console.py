"""`rapport import <resource> FILE.csv`: the same import as POST /imports, run in this process
with a progress bar.

The import is recorded and its job queued exactly as the API does it, so a command that is
interrupted leaves an import that the server's job runner resumes from its last chunk. While this
process holds the import's lock the job waits; if a server got there first, this command follows
its progress instead.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rapport.core.auth import Principal, Role
from rapport.core.config import Settings
from rapport.core.db import Database
from rapport.core.ids import new_id
from rapport.imports.repository import ImportErrorRepository, ImportRepository, find_actor
from rapport.imports.runner import ImportRun
from rapport.imports.schemas import ImportOptions
from rapport.imports.service import ImportService, import_path

SHOWN_ERRORS = 10
FOLLOW_SECONDS = 0.5


class CommandError(Exception):
    """A mistake on the command line (unknown user, no workspace...): printed, exit code 1."""


async def resolve_principal(
    db: Database, workspace_id: uuid.UUID | None, email: str | None
) -> Principal:
    """Who the import runs as: `--user` (in `--workspace-id`, or their only workspace), else the
    first admin (of `--workspace-id`, or of the oldest workspace)."""
    async with db.read_sessions() as session:
        found = await find_actor(session, workspace_id, email)
    if not found:
        who = f"user {email}" if email else "admin"
        where = f" in workspace {workspace_id}" if workspace_id else ""
        raise CommandError(f"No active {who}{where}.")
    if email and workspace_id is None and len({r["workspace_id"] for r in found}) > 1:
        raise CommandError(f"{email} belongs to several workspaces: pass --workspace-id.")
    chosen = found[0]
    role = Role(chosen["role"])
    if role not in (Role.admin, Role.member):
        raise CommandError(f"{chosen['email']} is a {role.value}: imports need admin or member.")
    return Principal(
        user_id=chosen["user_id"],
        workspace_id=chosen["workspace_id"],
        role=role,
        credential="user",
        credential_id=new_id(),  # this command run
    )


def _bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


async def import_file(
    settings: Settings,
    path: Path,
    options: ImportOptions,
    *,
    workspace_id: uuid.UUID | None,
    email: str | None,
    console: Console,
    migrate: Callable[[str], Any] | None = None,
) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    """Run the import to its end; returns the import and its first errors."""
    if migrate is not None:
        await migrate(settings.resolved_database_url)
    db = Database(settings)
    try:
        principal = await resolve_principal(db, workspace_id, email)
        import_id = new_id()
        part = import_path(settings, import_id).with_suffix(".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.copyfile, path, part)
        try:
            async with db.write_sessions() as session, session.begin():
                await ImportService(session, principal, settings).create(
                    import_id, part, path.name, part.stat().st_size, options
                )
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        with _bar(console) as progress:
            task = progress.add_task("queued", total=None)

            def show(row: Mapping[str, Any]) -> None:
                progress.update(
                    task,
                    description=row["phase"] or row["status"],
                    total=row["total"],
                    completed=row["processed"],
                )

            run = ImportRun(db, settings, on_progress=show)
            while True:
                outcome = await run.run(principal.workspace_id, import_id)
                if outcome.state == "paused":
                    continue
                async with db.read_sessions() as session:
                    row = await ImportRepository(session, principal.workspace_id).get(import_id)
                assert row is not None
                show(row)
                if row["status"] in ("completed", "failed"):
                    break
                await asyncio.sleep(FOLLOW_SECONDS)  # another process holds it: follow along
        async with db.read_sessions() as session:
            errors = await ImportErrorRepository(session, principal.workspace_id).page(
                import_id, None, SHOWN_ERRORS
            )
        return row, errors
    finally:
        await db.dispose()
