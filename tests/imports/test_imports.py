"""CSV imports through HTTP: the upload, the job (run with `drain`), progress, the error report,
dedupe, strict and dry runs, mappings, resumption, and workspace isolation."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from rapport.contacts.schemas import ContactCreate
from rapport.imports import runner
from rapport.imports.repository import ImportRepository
from rapport.imports.resources import RESOURCES
from tests.factories import add_member, register
from tests.imports.factories import (
    CONTACTS,
    IMPORTS,
    contacts,
    csv_text,
    define_field,
    error_report,
    event_types,
    get_import,
    run_import,
    start_import,
    upload,
)
from tests.query_plans import captured

HEADER = ["first_name", "last_name", "email", "phone", "notes"]


def mixed_file() -> str:
    """Three good rows and three bad ones; the fourth record spans two physical lines."""
    return (
        "first_name,last_name,email,phone,notes\n"  # line 1
        "Ada,Lovelace,ada@example.com,+1 979 236 1958,\n"  # line 2: good
        "Bad,Email,not-an-email,,\n"  # line 3: bad email
        'Grace,Hopper,grace@example.com,,"two\nlines"\n'  # lines 4-5: good
        ",,,,only notes\n"  # line 6: no name nor email
        "Alan,Turing,alan@example.com,12,\n"  # line 7: bad phone
        "Edsger,Dijkstra,edsger@example.com,,\n"  # line 8: good
    )


class TestImportWithBadRows:
    async def test_bad_rows_are_reported_by_line_and_the_rest_imported(self, client, app):
        admin = await register(client)
        done = await run_import(client, app, admin, mixed_file())
        assert done["status"] == "completed", done
        assert (done["total"], done["processed"]) == (6, 6)
        assert (done["created"], done["updated"], done["skipped"], done["errors"]) == (3, 0, 0, 3)
        emails = sorted(c["email"] for c in await contacts(client, admin))
        assert emails == ["ada@example.com", "edsger@example.com", "grace@example.com"]
        grace = next(c for c in await contacts(client, admin) if c["first_name"] == "Grace")
        assert grace["notes"] == "two\nlines"

        report = await error_report(client, admin, done["id"])
        assert report[0] == ["line", "column", "field", "reason", *HEADER]
        by_line = {int(r[0]): r for r in report[1:]}
        assert sorted(by_line) == [3, 6, 7]
        assert by_line[3][1:3] == ["email", "email"] and "email" in by_line[3][3]
        assert by_line[3][4:] == ["Bad", "Email", "not-an-email", "", ""]
        assert by_line[6][1:3] == ["", ""] and "first name" in by_line[6][3]
        assert by_line[7][1:3] == ["phone", "phone"]
        assert by_line[7][4:] == ["Alan", "Turing", "alan@example.com", "12", ""]

    async def test_rows_are_written_as_a_bulk_write_writes_them(
        self, client, app, database, backend
    ):
        """The job writes through a unit of work like a request's: on PostgreSQL its contacts,
        their events and search documents are copied in, not INSERTed row by row."""
        admin = await register(client)
        with (
            captured(database, "COPY ") as copies,
            captured(database, "INSERT INTO contact ") as inserts,
        ):
            done = await run_import(client, app, admin, mixed_file())
        assert done["created"] == 3
        tables = {c.sql.split()[1] for c in copies}
        if backend == "postgres":
            assert {"contact", "event", "search_document"} <= tables, tables
            assert not inserts
        else:
            assert not copies and inserts

    async def test_progress_fields_and_events(self, client, app, database, settings, monkeypatch):
        monkeypatch.setattr(settings, "import_chunk_rows", 2)
        monkeypatch.setattr(settings, "import_progress_seconds", 0)
        admin = await register(client)
        queued = await start_import(client, admin, mixed_file())
        assert queued["status"] == "queued"
        assert queued["total"] is None and queued["processed"] == 0
        assert queued["mapping"] == {h: h for h in HEADER} and queued["ignored_columns"] == []
        await app.state.background.drain()
        done = await get_import(client, admin, queued["id"])
        assert done["status"] == "completed" and done["phase"] is None
        assert done["started_at"] and done["finished_at"]
        types = await event_types(database, queued["id"])
        assert types[0] == "import.created" and types[-1] == "import.completed"
        assert types.count("import.progress") == 3  # one per chunk of two rows

    async def test_the_list_shows_the_workspace_imports_newest_first(self, client, app):
        admin = await register(client)
        first = await start_import(client, admin, mixed_file())
        second = await start_import(client, admin, mixed_file(), dry_run=True)
        listed = await client.get(IMPORTS, headers=admin.headers)
        assert listed.status_code == 200, listed.text
        assert [i["id"] for i in listed.json()["data"]] == [second["id"], first["id"]]
        queued = await client.get(IMPORTS, params={"status": "queued"}, headers=admin.headers)
        assert len(queued.json()["data"]) == 2
        await app.state.background.drain()
        done = await client.get(IMPORTS, params={"status": "completed"}, headers=admin.headers)
        assert len(done.json()["data"]) == 2


class TestStrictAndDryRun:
    async def test_strict_mode_imports_nothing_when_a_row_is_bad(self, client, app):
        admin = await register(client)
        done = await run_import(client, app, admin, mixed_file(), strict=True)
        assert done["status"] == "failed"
        assert "nothing was imported" in done["failure_reason"]
        assert (done["created"], done["errors"]) == (0, 3)
        assert await contacts(client, admin) == []
        report = await error_report(client, admin, done["id"])
        assert sorted(int(r[0]) for r in report[1:]) == [3, 6, 7]

    async def test_strict_mode_imports_a_clean_file(self, client, app, settings, monkeypatch):
        monkeypatch.setattr(settings, "import_chunk_rows", 2)
        admin = await register(client)
        rows = [["first_name", "email"]] + [[f"P{i}", f"p{i}@example.com"] for i in range(5)]
        done = await run_import(client, app, admin, csv_text(rows), strict=True)
        assert done["status"] == "completed", done
        assert (done["processed"], done["created"], done["errors"]) == (5, 5, 0)
        assert len(await contacts(client, admin)) == 5

    async def test_dry_run_writes_nothing_and_reports(self, client, app, database):
        admin = await register(client)
        done = await run_import(client, app, admin, mixed_file(), dry_run=True)
        assert done["status"] == "completed" and done["dry_run"] is True
        assert (done["processed"], done["created"], done["errors"]) == (6, 3, 3)
        assert await contacts(client, admin) == []
        report = await error_report(client, admin, done["id"])
        assert sorted(int(r[0]) for r in report[1:]) == [3, 6, 7]
        types = await event_types(database, done["id"])
        assert "contact.created" not in types and types[-1] == "import.completed"

    async def test_dry_run_sees_duplicates_across_chunks(self, client, app, settings, monkeypatch):
        monkeypatch.setattr(settings, "import_chunk_rows", 2)
        admin = await register(client)
        rows = [
            ["first_name", "email"],
            ["A", "same@example.com"],  # line 2
            ["B", "b@example.com"],
            ["C", "SAME@example.com"],  # line 4, next chunk: refused in create mode
            ["D", "d@example.com"],
        ]
        done = await run_import(client, app, admin, csv_text(rows), dry_run=True, dedupe="create")
        assert (done["created"], done["errors"]) == (3, 1)
        report = await error_report(client, admin, done["id"])
        assert report[1][:3] == ["4", "email", "email"]
        assert "line 2" in report[1][3]
        skip = await run_import(client, app, admin, csv_text(rows), dry_run=True, dedupe="skip")
        assert (skip["created"], skip["skipped"], skip["errors"]) == (3, 1, 0)
        real = await run_import(client, app, admin, csv_text(rows), dedupe="create")
        assert (real["created"], real["errors"]) == (3, 1)


class TestDedupe:
    FILE = csv_text(
        [
            ["first_name", "email", "job_title"],
            ["Ada", "ADA@example.com", "Countess"],
            ["New", "new@example.com", "Engineer"],
            ["Again", "new@example.com", "Twice"],
        ]
    )

    async def _existing(self, client, admin) -> dict:
        response = await client.post(
            CONTACTS,
            json={"first_name": "Ada", "email": "ada@example.com", "job_title": "Analyst"},
            headers=admin.headers,
        )
        assert response.status_code == 201, response.text
        return response.json()["data"]

    async def test_skip_leaves_existing_contacts_and_repeats_alone(self, client, app):
        admin = await register(client)
        ada = await self._existing(client, admin)
        done = await run_import(client, app, admin, self.FILE, dedupe="skip")
        assert (done["created"], done["updated"], done["skipped"], done["errors"]) == (1, 0, 2, 0)
        by_email = {c["email"]: c for c in await contacts(client, admin)}
        assert by_email["ada@example.com"]["job_title"] == "Analyst"
        assert by_email["ada@example.com"]["version"] == ada["version"]
        assert by_email["new@example.com"]["job_title"] == "Engineer"

    async def test_update_changes_the_contact_with_that_email(self, client, app):
        admin = await register(client)
        ada = await self._existing(client, admin)
        done = await run_import(client, app, admin, self.FILE, dedupe="update")
        assert (done["created"], done["updated"], done["errors"]) == (1, 2, 0)
        by_email = {c["email"]: c for c in await contacts(client, admin)}
        assert len(by_email) == 2
        assert by_email["ada@example.com"]["id"] == ada["id"]
        assert by_email["ada@example.com"]["job_title"] == "Countess"
        assert by_email["new@example.com"]["job_title"] == "Twice"

    async def test_create_refuses_emails_already_used(self, client, app):
        admin = await register(client)
        await self._existing(client, admin)
        done = await run_import(client, app, admin, self.FILE, dedupe="create")
        assert (done["created"], done["updated"], done["errors"]) == (1, 0, 2)
        report = await error_report(client, admin, done["id"])
        assert [r[:3] for r in report[1:]] == [["2", "email", "email"], ["4", "email", "email"]]
        assert "already used" in report[1][3]

    async def test_update_is_for_contacts_only(self, client):
        admin = await register(client)
        file = csv_text([["name", "domain"], ["Acme", "acme.com"]])
        response = await upload(client, admin, file, resource="companies", dedupe="update")
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "body.dedupe"


class TestMapping:
    async def test_custom_fields_and_tags_are_mapped_and_typed(self, client, app):
        admin = await register(client)
        await define_field(client, admin, "tier", "select", options=["gold", "silver"])
        await define_field(client, admin, "score", "number")
        await define_field(client, admin, "vip", "boolean")
        await define_field(client, admin, "interests", "multi_select", options=["a", "b", "c"])
        file = csv_text(
            [
                ["Mail", "Given", "Level", "Points", "VIP?", "Likes", "Labels", "Town", "Other"],
                ["x@example.com", "X", "gold", "12", "yes", "a;c", "vip; emea,new", "Paris", "?"],
                ["y@example.com", "Y", "bronze", "1.5", "no", "", "", "", ""],
                ["z@example.com", "Z", "", "many", "", "", "", "", ""],
            ]
        )
        mapping = {
            "Mail": "email",
            "Given": "first_name",
            "Level": "cf.tier",
            "Points": "cf.score",
            "VIP?": "cf.vip",
            "Likes": "cf.interests",
            "Labels": "tags",
            "Town": "address.city",
        }
        done = await run_import(client, app, admin, file, mapping=mapping)
        assert done["mapping"] == mapping and done["ignored_columns"] == ["Other"]
        assert (done["created"], done["errors"]) == (1, 2)
        (x,) = await contacts(client, admin)
        assert x["custom_fields"] == {
            "tier": "gold",
            "score": 12,
            "vip": True,
            "interests": ["a", "c"],
        }
        assert x["tags"] == ["vip", "emea", "new"]
        assert x["address"] == {"city": "Paris"}
        report = await error_report(client, admin, done["id"])
        by_line = {r[0]: r for r in report[1:]}
        assert by_line["3"][1:3] == ["Level", "cf.tier"] and "gold" in by_line["3"][3]
        assert by_line["4"][1:4] == ["Points", "cf.score", "must be a number"]

    async def test_without_a_mapping_columns_named_like_fields_are_used(self, client, app):
        admin = await register(client)
        await define_field(client, admin, "tier", "text")
        file = (
            "\ufeffFirst Name,E-mail,Email,cf.tier,owner_id,Shoe size\nAda,,a@example.com,x,,42\n"
        )
        done = await run_import(client, app, admin, file)
        assert done["mapping"] == {
            "First Name": "first_name",
            "Email": "email",
            "cf.tier": "cf.tier",
        }
        assert done["ignored_columns"] == ["E-mail", "owner_id", "Shoe size"]
        (ada,) = await contacts(client, admin)
        assert (ada["first_name"], ada["email"], ada["custom_fields"]) == (
            "Ada",
            "a@example.com",
            {"tier": "x"},
        )

    async def test_a_mapping_must_fit_the_file_and_the_resource(self, client):
        admin = await register(client)
        file = csv_text([["Mail", "Name"], ["a@example.com", "A"]])
        response = await upload(
            client,
            admin,
            file,
            mapping={"Mail": "email", "Missing": "first_name", "Name": "shoe_size", "x": "cf.no"},
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_mapping"
        assert {d["field"] for d in error["details"]} == {
            "body.mapping.Missing",
            "body.mapping.Name",
            "body.mapping.x",
        }
        nothing = await upload(client, admin, "Shoe,Hat\n1,2\n")
        assert nothing.status_code == 422 and nothing.json()["error"]["code"] == "invalid_mapping"
        listed = await client.get(IMPORTS, headers=admin.headers)
        assert listed.json()["data"] == []

    async def test_semicolons_and_latin_1(self, client, app):
        admin = await register(client)
        raw = "first_name;email\nZoë;zoe@example.com\n".encode("latin-1")
        done = await run_import(client, app, admin, raw, delimiter=";", encoding="latin-1")
        assert done["created"] == 1
        (zoe,) = await contacts(client, admin)
        assert zoe["first_name"] == "Zoë"


class TestUploadChecks:
    async def test_the_file_is_required_and_must_be_multipart(self, client):
        admin = await register(client)
        missing = await client.post(
            IMPORTS, data={"resource": "contacts"}, files={"x": ("n", b"")}, headers=admin.headers
        )
        assert missing.status_code == 422, missing.text
        as_json = await client.post(IMPORTS, json={"resource": "contacts"}, headers=admin.headers)
        assert as_json.status_code == 415
        bad_option = await upload(client, admin, "email\na@example.com\n", resource="deals")
        assert bad_option.status_code == 422
        assert bad_option.json()["error"]["details"][0]["field"] == "body.resource"
        bad_json = await client.post(
            IMPORTS,
            data={"resource": "contacts", "mapping": "{nope"},
            files={"file": ("a.csv", b"email\n", "text/csv")},
            headers=admin.headers,
        )
        assert bad_json.status_code == 422
        empty = await upload(client, admin, "")
        assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_csv"

    async def test_a_file_over_the_limit_is_413_and_not_kept(self, client, settings, monkeypatch):
        monkeypatch.setattr(settings, "import_max_bytes", 1000)
        admin = await register(client)
        big = "email\n" + "".join(f"p{i}@example.com\n" for i in range(200))
        response = await upload(client, admin, big)
        assert response.status_code == 413, response.text
        leftovers = list((settings.data_dir / "imports").glob("*.part"))
        assert leftovers == []

    async def test_the_upload_is_streamed_past_the_json_body_limit(self, client, app, settings):
        admin = await register(client)
        size = app.state.settings.max_body_bytes + 1024 * 1024
        big = "Shoe size\n" + "4" * size + "\n"
        response = await upload(client, admin, big)
        # read to the end (not a 413 from the body middleware), then refused for its header
        assert response.status_code == 422, response.text[:300]
        assert response.json()["error"]["code"] == "invalid_mapping"
        assert list((settings.data_dir / "imports").glob("*.part")) == []

    async def test_the_job_runs_as_its_user_and_stops_if_they_lose_write_access(
        self, client, app, database
    ):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        done = await run_import(client, app, member, "email\nm@example.com\n")
        assert done["created_by"] == member.user["id"]
        actors = await _contact_event_actors(database, admin.workspace_id)
        assert actors == {member.user["id"]}
        started = await start_import(client, member, "email\nlater@example.com\n")
        demoted = await client.patch(
            f"/api/v1/users/{member.user['id']}", json={"role": "viewer"}, headers=admin.headers
        )
        assert demoted.status_code == 200, demoted.text
        await app.state.background.drain()
        refused = await get_import(client, admin, started["id"])
        assert refused["status"] == "failed" and "can no longer write" in refused["failure_reason"]
        assert [c["email"] for c in await contacts(client, admin)] == ["m@example.com"]

    async def test_viewers_cannot_import(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        response = await upload(client, viewer, "email\na@example.com\n")
        assert response.status_code == 403
        seen = await client.get(IMPORTS, headers=viewer.headers)
        assert seen.status_code == 200

    async def test_a_file_that_is_not_csv_fails_the_import_with_its_line(self, client, app):
        admin = await register(client)
        unclosed = await run_import(client, app, admin, 'email,notes\na@example.com,"open\n')
        assert unclosed["status"] == "failed" and "Line 2" in unclosed["failure_reason"]
        not_utf8 = await run_import(client, app, admin, b"email\n\xff\xfe@example.com\n")
        assert not_utf8["status"] == "failed"
        assert "Line 2" in not_utf8["failure_reason"] and "utf-8" in not_utf8["failure_reason"]
        assert await contacts(client, admin) == []


class TestResumption:
    async def test_a_sliced_import_resumes_where_it_paused(
        self, client, app, settings, monkeypatch
    ):
        monkeypatch.setattr(settings, "import_chunk_rows", 3)
        monkeypatch.setattr(settings, "import_slice_seconds", 0)  # pause after every chunk
        admin = await register(client)
        rows = [["first_name", "email"]] + [[f"P{i}", f"p{i}@example.com"] for i in range(10)]
        done = await run_import(client, app, admin, csv_text(rows))
        assert (done["status"], done["processed"], done["created"]) == ("completed", 10, 10)
        assert len(await contacts(client, admin)) == 10

    async def test_a_crash_mid_chunk_resumes_from_the_last_committed_chunk(
        self, client, app, settings, monkeypatch, clock
    ):
        monkeypatch.setattr(settings, "import_chunk_rows", 2)
        admin = await register(client)
        rows = [["first_name", "email"]] + [[f"P{i}", f"p{i}@example.com"] for i in range(7)]
        original = runner.ImportRun._write
        calls = {"n": 0}

        async def crash_on_third_chunk(self, session, *args, **kwargs):  # noqa: ANN001
            calls["n"] += 1
            await original(self, session, *args, **kwargs)  # the rows are written...
            if calls["n"] == 3:
                raise ConnectionResetError("the process died")  # ...but never committed

        monkeypatch.setattr(runner.ImportRun, "_write", crash_on_third_chunk)
        started = await start_import(client, admin, csv_text(rows))
        clock.advance(seconds=1)  # the job was queued on the real clock
        await app.state.background.drain()
        halfway = await get_import(client, admin, started["id"])
        assert (halfway["status"], halfway["processed"], halfway["created"]) == ("running", 4, 4)
        assert len(await contacts(client, admin)) == 4
        clock.advance(seconds=15)  # the job's first retry is due after 10 s
        await app.state.background.drain()
        done = await get_import(client, admin, started["id"])
        assert (done["status"], done["processed"], done["created"], done["errors"]) == (
            "completed",
            7,
            7,
            0,
        )
        emails = [c["email"] for c in await contacts(client, admin)]
        assert sorted(emails) == sorted(f"p{i}@example.com" for i in range(7))

    async def test_an_import_whose_job_keeps_failing_ends_failed(
        self, client, app, monkeypatch, clock, database
    ):
        async def broken(self, row, token):  # noqa: ANN001
            raise ConnectionResetError("the database keeps going away")

        monkeypatch.setattr(runner.ImportRun, "_work", broken)
        admin = await register(client)
        started = await start_import(client, admin, mixed_file())
        for wait in (1, 10, 60, 600, 3600, 6 * 3600):  # the job's retry schedule, then dead
            clock.advance(seconds=wait + 1)
            await app.state.background.drain()
        done = await get_import(client, admin, started["id"])
        assert (done["status"], done["failure_reason"]) == (
            "failed",
            "The import stopped on an error.",
        )
        assert (await event_types(database, started["id"]))[-1] == "import.failed"

    async def test_an_import_another_runner_holds_waits_for_its_lease(
        self, client, app, database, clock
    ):
        admin = await register(client)
        rows = [["email"]] + [[f"p{i}@example.com"] for i in range(5)]
        started = await start_import(client, admin, csv_text(rows))
        clock.advance(seconds=1)  # the job was queued on the real clock
        workspace_id, import_id = uuid.UUID(admin.workspace_id), uuid.UUID(started["id"])
        async with database.write_sessions() as session, session.begin():
            held = await ImportRepository(session, workspace_id).claim(
                import_id, uuid.uuid4(), clock(), clock() + timedelta(minutes=10)
            )
        assert held is not None  # another process, now dead, took the import
        await app.state.background.drain()
        waiting = await get_import(client, admin, started["id"])
        assert (waiting["status"], waiting["processed"]) == ("running", 0)
        clock.advance(minutes=11)  # its lock has run out
        await app.state.background.drain()
        done = await get_import(client, admin, started["id"])
        assert (done["status"], done["created"]) == ("completed", 5)


class TestReadAhead:
    async def test_the_next_chunk_is_read_while_one_is_written(
        self, client, app, settings, monkeypatch
    ):
        """The file is read a chunk ahead: the next chunk's records are read and made into items
        before the chunk being written has committed, and every row still lands once."""
        monkeypatch.setattr(settings, "import_chunk_rows", 2)
        monkeypatch.setattr(runner, "READ_SLICE", 1)
        admin = await register(client)
        rows = [["first_name", "email"]] + [[f"P{i}", f"p{i}@example.com"] for i in range(5)]
        steps: list[tuple[str, int]] = []
        read, chunk = runner.ImportRun._read, runner.ImportRun._chunk

        async def reading(self, *args, **kwargs):  # noqa: ANN001, ANN202
            out = await read(self, *args, **kwargs)
            steps.append(("read", out.records[0].line if out.records else 0))
            return out

        async def writing(self, row, token, spec, principal, ahead, *args):  # noqa: ANN001, ANN202
            steps.append(("write", ahead.records[0].line))
            written = await chunk(self, row, token, spec, principal, ahead, *args)
            steps.append(("written", ahead.records[0].line))
            return written

        monkeypatch.setattr(runner.ImportRun, "_read", reading)
        monkeypatch.setattr(runner.ImportRun, "_chunk", writing)
        done = await run_import(client, app, admin, csv_text(rows))
        assert (done["status"], done["processed"], done["created"]) == ("completed", 5, 5)
        # lines 2-3, 4-5, 6: each chunk after the first was read before the one before it ended
        assert steps.index(("read", 4)) < steps.index(("written", 2)), steps
        assert steps.index(("read", 6)) < steps.index(("written", 4)), steps
        assert steps.index(("read", 0)) < steps.index(("written", 6)), steps
        assert [s for s in steps if s[0] == "written"] == [("written", n) for n in (2, 4, 6)]
        emails = sorted(c["email"] for c in await contacts(client, admin))
        assert emails == sorted(f"p{i}@example.com" for i in range(5))

    async def test_rows_are_validated_ahead_and_the_bulk_path_takes_the_models(
        self, client, app, monkeypatch
    ):
        """Valid rows reach the bulk path as models of the create schema (validated while the
        chunk before was written); invalid ones as items, which it validates and reports."""
        spec = RESOURCES["contacts"]
        handed: list[object] = []

        async def spy(service, items, dedupe):  # noqa: ANN001, ANN202
            handed.extend(items)
            return await spec.bulk(service, items, dedupe)

        monkeypatch.setitem(RESOURCES, "contacts", dataclasses.replace(spec, bulk=spy))
        admin = await register(client)
        done = await run_import(client, app, admin, mixed_file())
        assert (done["created"], done["errors"]) == (3, 3)
        models = [i for i in handed if isinstance(i, ContactCreate)]
        assert sorted(m.email for m in models) == [
            "ada@example.com",
            "edsger@example.com",
            "grace@example.com",
        ]
        assert all(isinstance(i, dict) for i in handed if i not in models) and len(handed) == 6
        report = await error_report(client, admin, done["id"])
        assert sorted(int(r[0]) for r in report[1:]) == [3, 6, 7]

    async def test_a_broken_line_read_ahead_fails_after_the_chunk_before_is_written(
        self, client, app, settings, monkeypatch
    ):
        """A file that breaks after it was counted (it changed on disk) fails at its line, as
        before the read-ahead: the chunk before the broken one is written, nothing after it."""
        monkeypatch.setattr(settings, "import_chunk_rows", 2)

        async def counted_without_reading(self, path, row):  # noqa: ANN001, ANN202
            return 5

        monkeypatch.setattr(runner.ImportRun, "_count", counted_without_reading)
        admin = await register(client)
        text = "first_name,email\nA,a@example.com\nB,b@example.com\nC,c@example.com\n" + (
            'D,"open\n'
        )
        done = await run_import(client, app, admin, text)
        assert done["status"] == "failed" and "Line 5" in done["failure_reason"], done
        assert sorted(c["email"] for c in await contacts(client, admin)) == [
            "a@example.com",
            "b@example.com",
        ]


class TestOtherResources:
    async def test_companies_and_leads(self, client, app):
        admin = await register(client)
        companies = csv_text(
            [
                ["name", "domain", "size"],
                ["Acme", "https://www.acme.com", "11-50"],
                ["Dup", "acme.com", ""],
            ]
        )
        done = await run_import(client, app, admin, companies, resource="companies")
        assert (done["created"], done["skipped"], done["errors"]) == (1, 1, 0)
        leads = csv_text(
            [["first_name", "email", "value", "currency"], ["L", "l@example.com", "5000", "eur"]]
        )
        done = await run_import(client, app, admin, leads, resource="leads")
        assert (done["created"], done["errors"]) == (1, 0)
        listed = await client.get("/api/v1/leads", headers=admin.headers)
        (lead,) = listed.json()["data"]
        assert (lead["value"], lead["currency"]) == (5000, "EUR")


class TestIsolation:
    async def test_another_workspace_cannot_see_an_import(self, client, app):
        owner = await register(client)
        intruder = await register(client)
        done = await run_import(client, app, owner, mixed_file())
        for path in (f"{IMPORTS}/{done['id']}", f"{IMPORTS}/{done['id']}/errors.csv"):
            response = await client.get(path, headers=intruder.headers)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "import_not_found"
        listed = await client.get(IMPORTS, headers=intruder.headers)
        assert listed.json()["data"] == []
        assert (await client.get(f"{IMPORTS}/{done['id']}")).status_code == 401


async def _contact_event_actors(database, workspace_id: str) -> set[str]:  # noqa: ANN001
    from sqlalchemy import select

    from rapport.core.events import TABLE as EVENTS

    async with database.read_sessions() as session:
        rows = await session.execute(
            select(EVENTS.c.actor_id).where(
                EVENTS.c.workspace_id == uuid.UUID(workspace_id),
                EVENTS.c.type == "contact.created",
            )
        )
        return {str(actor) for actor in rows.scalars()}


@pytest.fixture(autouse=True)
def _fast_progress(settings, monkeypatch):  # noqa: ANN001, ANN202
    """Tests see a progress event only where they ask for one."""
    monkeypatch.setattr(settings, "import_progress_seconds", 3600)
