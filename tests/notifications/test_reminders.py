"""Task due reminders: a durable job per task and due time, run on the test's clock; it notifies
the assignee once, not before its time, and not for a task that was completed, deleted or moved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from rapport.core import jobs
from rapport.notifications.handlers import REMINDER_LEAD, TASK_DUE
from tests.factories import add_member, register
from tests.notifications.factories import TASKS, drain, inbox, make_task, patch


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def due_notes(client, account):  # noqa: ANN001, ANN201
    return await inbox(client, account, type="task.due")


class TestDueReminders:
    async def test_queuing_a_reminder_wakes_the_scheduler(self, app, client, clock, database):
        """The relay batch that queues a reminder wakes the scheduler when it commits (a
        reminder can be due at once), as every job queued through `jobs.enqueue` does."""
        admin = await register(client)
        await drain(app)
        woken: list[bool] = []
        database.on_jobs_committed.append(lambda: woken.append(True))
        try:
            due = clock() + REMINDER_LEAD + timedelta(seconds=30)
            await make_task(client, admin, assignee_id=admin.user["id"], due_at=iso(due))
            assert woken == []  # the request queued no job: its event did
            await app.state.background.relay.run_all()
            assert woken == [True]
        finally:
            database.on_jobs_committed.pop()

    async def test_once_and_not_before_its_time(self, app, client, clock, database):
        admin = await register(client)
        bob = await add_member(client, admin)
        due = clock() + timedelta(hours=2)
        task = await make_task(client, admin, assignee_id=bob.user["id"], due_at=iso(due))
        await drain(app)
        await patch(client, admin, f"{TASKS}/{task['id']}", title="Still due at the same time")
        await drain(app)
        assert await due_notes(client, bob) == []

        clock.current = due - REMINDER_LEAD - timedelta(minutes=1)
        await drain(app)
        assert await due_notes(client, bob) == [], "a minute early"

        clock.current = due - REMINDER_LEAD + timedelta(seconds=1)
        await drain(app)
        [note] = await due_notes(client, bob)
        assert note["resource_id"] == task["id"]
        assert note["data"]["due_at"] == iso(due)
        assert "Still due at the same time" in note["title"]

        clock.advance(hours=5)
        await drain(app)
        assert len(await due_notes(client, bob)) == 1, "once"

        # Jobs run at least once: a second run of the same job (its worker died before it could
        # record success) finds the reminder already sent.
        async with database.write_sessions() as session, session.begin():
            done = await session.execute(
                update(jobs.TABLE)
                .where(
                    jobs.TABLE.c.kind == TASK_DUE,
                    jobs.TABLE.c.workspace_id == uuid.UUID(admin.workspace_id),
                )
                .values(status=jobs.PENDING, run_at=clock())
                .returning(jobs.TABLE.c.id)
            )
            assert len(done.all()) == 1
        await drain(app)
        assert len(await due_notes(client, bob)) == 1
        assert await due_notes(client, admin) == []

    async def test_not_for_a_completed_or_deleted_task(self, app, client, clock):
        admin = await register(client)
        bob = await add_member(client, admin)
        due = iso(clock() + timedelta(hours=1))
        done = await make_task(client, admin, assignee_id=bob.user["id"], due_at=due)
        gone = await make_task(client, admin, assignee_id=bob.user["id"], due_at=due)
        await drain(app)
        await patch(client, bob, f"{TASKS}/{done['id']}", status="done")
        r = await client.delete(f"{TASKS}/{gone['id']}", headers=admin.headers)
        assert r.status_code == 200, r.text
        clock.advance(hours=2)
        await drain(app)
        assert await due_notes(client, bob) == []

    async def test_a_moved_due_date_reminds_at_the_new_time_for_the_current_assignee(
        self, app, client, clock
    ):
        admin = await register(client)
        bob = await add_member(client, admin)
        carol = await add_member(client, admin)
        start = clock()
        task = await make_task(
            client, admin, assignee_id=bob.user["id"], due_at=iso(start + timedelta(hours=1))
        )
        await drain(app)
        path = f"{TASKS}/{task['id']}"
        await patch(client, admin, path, due_at=iso(start + timedelta(hours=3)))
        await drain(app)
        clock.current = start + timedelta(hours=1, minutes=30)
        await drain(app)
        assert await due_notes(client, bob) == [], "the old due time is gone"

        await patch(client, admin, path, assignee_id=carol.user["id"])
        clock.current = start + timedelta(hours=3)
        await drain(app)
        assert await due_notes(client, bob) == []
        [note] = await due_notes(client, carol)
        assert note["data"]["due_at"] == iso(start + timedelta(hours=3))

    async def test_no_reminder_for_a_task_already_overdue_or_unassigned(self, app, client, clock):
        admin = await register(client)
        await make_task(
            client, admin, assignee_id=admin.user["id"], due_at=iso(clock() - timedelta(hours=1))
        )
        await make_task(client, admin, due_at=iso(clock() + timedelta(hours=1)))
        await drain(app)
        clock.advance(hours=2)
        await drain(app)
        assert await due_notes(client, admin) == []
