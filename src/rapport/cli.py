"""The `rapport` command: serve, worker, db, users, demo, import, openapi."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel

from rapport.core.config import get_settings

app = typer.Typer(help="Rapport CRM API", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database migrations", no_args_is_help=True)
users_app = typer.Typer(help="User administration", no_args_is_help=True)
openapi_app = typer.Typer(help="The OpenAPI document", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(openapi_app, name="openapi")
console = Console()

DEMO_EMAIL = "admin@demo.example.com"


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from rapport.migrations.runner import upgrade

    url = get_settings().resolved_database_url
    asyncio.run(upgrade(url, revision))
    console.print(f"[green]Database at {revision}[/green]")


@db_app.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    from rapport.migrations.runner import current

    console.print(asyncio.run(current(get_settings().resolved_database_url)) or "(empty)")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """Autogenerate a migration from the models (developers)."""
    from rapport.migrations.runner import revision

    revision(get_settings().resolved_database_url, message)


async def _create_admin(email: str, password: str, full_name: str, workspace: str) -> bool:
    """Create a workspace with an admin; False when the email already exists."""
    from rapport.core.auth import PrincipalCache
    from rapport.core.db import Database
    from rapport.core.ratelimit import RateLimiter
    from rapport.core.security import KeyRing, PasswordHasher
    from rapport.identity.errors import EmailTaken
    from rapport.identity.schemas import RegisterRequest
    from rapport.identity.service import AuthService, Security
    from rapport.migrations.runner import upgrade

    settings = get_settings().model_copy(update={"allow_signup": True})  # an operator's act
    await upgrade(settings.resolved_database_url)
    db = Database(settings)
    security = Security(
        settings=settings,
        keyring=KeyRing(settings.resolved_secret_key(), [], settings.access_token_minutes),
        hasher=PasswordHasher(settings),
        cache=PrincipalCache(0),
        limiter=RateLimiter(settings),
    )
    try:
        async with db.write_sessions() as session, session.begin():
            body = RegisterRequest(
                email=email, password=password, full_name=full_name, workspace_name=workspace
            )
            await AuthService(session, security).register(body)
        return True
    except EmailTaken:
        return False
    finally:
        await db.dispose()


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    full_name: Annotated[str, typer.Option(prompt=True)],
    workspace: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Create a workspace with an admin user."""
    if asyncio.run(_create_admin(email, password, full_name, workspace)):
        console.print(f"[green]Created admin {email} in workspace {workspace!r}[/green]")
    else:
        console.print(f"[red]A user with email {email} already exists[/red]")
        raise typer.Exit(1)


def ensure_demo() -> None:
    password = secrets.token_urlsafe(12)
    if asyncio.run(_create_admin(DEMO_EMAIL, password, "Demo Admin", "Demo workspace")):
        console.print(
            Panel.fit(
                f"Demo workspace created. Log in once with:\n\n"
                f"  email:    [bold]{DEMO_EMAIL}[/bold]\n  password: [bold]{password}[/bold]\n\n"
                "This password is shown only now; keep it.",
                title="Rapport demo",
                border_style="green",
            )
        )
    else:
        console.print(f"Demo workspace exists; log in as [bold]{DEMO_EMAIL}[/bold].")


@app.command()
def demo() -> None:
    """Create the demo workspace and admin (once)."""
    ensure_demo()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: RAPPORT_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: RAPPORT_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="Default: RAPPORT_WORKERS")] = None,
    with_demo: Annotated[
        bool, typer.Option("--demo/--no-demo", help="Create the demo workspace")
    ] = False,
) -> None:
    """Migrate (embedded SQLite) and serve the API."""
    import uvicorn

    from rapport.migrations.runner import upgrade

    settings = get_settings()
    if settings.should_auto_migrate:
        asyncio.run(upgrade(settings.resolved_database_url))
    settings.resolved_secret_key()  # made once, before workers start, so they all share it
    if with_demo:
        ensure_demo()
    os.environ["RAPPORT_AUTO_MIGRATE"] = "false"  # done above; workers must not race on it
    host = host or settings.host
    port = port or settings.port
    console.print(
        f"Rapport on [bold]http://{host}:{port}[/bold]  (docs: http://{host}:{port}/docs)"
    )
    uvicorn.run(
        "rapport.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="warning",
    )


@app.command()
def worker() -> None:
    """Run background work in this process: the outbox relay, the job scheduler and (with Redis)
    the taskiq workers that execute jobs. Start as many as the load needs."""
    from rapport.main import create_app

    settings = get_settings()
    if not settings.uses_redis_jobs:
        console.print(
            "[yellow]No Redis configured: jobs run inside the API process; a separate worker "
            "only relays events and runs jobs here too.[/yellow]"
        )

    async def run() -> None:
        app = create_app(settings)
        background = app.state.background
        await background.start(worker=settings.uses_redis_jobs)
        console.print("Rapport worker running (Ctrl+C stops it)")
        try:
            await asyncio.Event().wait()
        finally:
            await background.stop()
            await app.state.db.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@openapi_app.command("export")
def openapi_export(path: Path = Path("openapi.json")) -> None:
    """Write the OpenAPI document (the checked-in copy must match the code)."""
    path.write_text(render_openapi())
    console.print(f"Wrote {path}")


def render_openapi() -> str:
    from rapport.core.config import Settings
    from rapport.main import create_app

    settings = Settings(
        secret_key="openapi-export", database_url="sqlite+aiosqlite:///:memory:", auto_migrate=False
    )
    return json.dumps(create_app(settings).openapi(), indent=2, sort_keys=False) + "\n"


# -- import ----------------------------------------------------------------------------------------


def _run_import(
    resource: str,
    path: Path,
    workspace_id: str | None,
    user: str | None,
    dedupe: str,
    strict: bool,
    dry_run: bool,
    mapping: str | None,
    delimiter: str,
    encoding: str,
) -> None:
    import uuid

    from pydantic import ValidationError

    from rapport.core.errors import AppError
    from rapport.imports.console import CommandError, import_file
    from rapport.imports.schemas import ImportOptions
    from rapport.migrations.runner import upgrade

    settings = get_settings()
    if not path.is_file():
        console.print(f"[red]No such file: {path}[/red]")
        raise typer.Exit(1)
    try:
        options = ImportOptions(
            resource=resource,
            mapping=json.loads(mapping) if mapping else None,
            dedupe=dedupe,
            strict=strict,
            dry_run=dry_run,
            delimiter=delimiter,
            encoding=encoding,
        )
        workspace = uuid.UUID(workspace_id) if workspace_id else None
    except (ValueError, ValidationError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    migrate = upgrade if settings.should_auto_migrate else None
    try:
        row, errors = asyncio.run(
            import_file(
                settings,
                path,
                options,
                workspace_id=workspace,
                email=user,
                console=console,
                migrate=migrate,
            )
        )
    except CommandError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    except AppError as exc:
        reasons = "; ".join(f"{d.get('field')}: {d.get('reason')}" for d in exc.details or [])
        console.print(f"[red]{exc.message}[/red] {reasons}")
        raise typer.Exit(1) from exc
    verb = "would be " if row["dry_run"] else ""
    console.print(
        f"[bold]{row['status']}[/bold]: {row['processed']} of {row['total']} rows; "
        f"{verb}created {row['created']}, {verb}updated {row['updated']}, "
        f"skipped {row['skipped']}, refused {row['errors']}  (import {row['id']})"
    )
    for error in errors:
        where = error["column"] or error["field"] or "row"
        console.print(f"  line {error['line']}: {where}: {error['reason']}")
    if row["errors"] > len(errors):
        console.print(f"  ... GET /api/v1/imports/{row['id']}/errors.csv has them all")
    if row["failure_reason"]:
        console.print(f"[red]{row['failure_reason']}[/red]")
    if row["status"] != "completed":
        raise typer.Exit(1)


@app.command("import")
def import_csv(
    resource: Annotated[str, typer.Argument(help="contacts, companies or leads.")],
    file: Annotated[Path, typer.Argument(help="The CSV file (header row first).")],
    workspace_id: Annotated[
        str | None, typer.Option(help="Default: the user's only workspace, or the first admin's.")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Email of the user it runs as. Default: the first admin.")
    ] = None,
    dedupe: Annotated[
        str,
        typer.Option(
            help="skip | update | create (by email; companies by domain; update: contacts)"
        ),
    ] = "skip",
    strict: Annotated[bool, typer.Option(help="Import nothing if any row is refused.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check every row; write nothing.")] = False,
    mapping: Annotated[
        str | None, typer.Option(help='JSON: CSV column → field, e.g. {"E-mail": "email"}')
    ] = None,
    delimiter: Annotated[str, typer.Option(help="One of , ; | or a tab.")] = ",",
    encoding: Annotated[str, typer.Option(help="utf-8, cp1252 or latin-1.")] = "utf-8",
) -> None:
    """Import a CSV file as POST /imports does (same checks, same job), with a progress bar:
    `rapport import contacts people.csv --dedupe update`."""
    _run_import(
        resource, file, workspace_id, user, dedupe, strict, dry_run, mapping, delimiter, encoding
    )


if __name__ == "__main__":
    app()
