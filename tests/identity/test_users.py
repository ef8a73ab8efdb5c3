"""Workspace members through HTTP: invitations, the users list, role changes and deactivation that
apply to credentials already issued, the last-admin rule, If-Match, and role enforcement."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from rapport.core.clock import utcnow
from rapport.identity.models import Invitation, Membership
from tests.factories import PASSWORD, add_member, create_api_key, login, register, unique_email

USERS = "/api/v1/users"
INVITATIONS = "/api/v1/users/invitations"
REGISTER = "/api/v1/auth/register"
TAGS = "/api/v1/tags"
ME = "/api/v1/auth/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def invite(client, admin, email: str | None = None, role: str = "member") -> dict:  # noqa: ANN001
    response = await client.post(
        INVITATIONS,
        json={"email": email or unique_email("inv"), "role": role},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def accept(client, invitation: dict, email: str | None = None):  # noqa: ANN001, ANN201
    return await client.post(
        REGISTER,
        json={
            "email": email or invitation["email"],
            "password": PASSWORD,
            "full_name": "Invitee",
            "invitation_token": invitation["token"],
        },
    )


async def patch_user(client, admin, user_id: str, body: dict, **headers: str):  # noqa: ANN001, ANN201
    return await client.patch(f"{USERS}/{user_id}", json=body, headers={**admin.headers, **headers})


class TestInvitations:
    async def test_member_and_viewer_cannot_manage_invitations(self, client):
        admin = await register(client)
        invitation = await invite(client, admin)
        for role in ("member", "viewer"):
            account = await add_member(client, admin, role)
            for method, path, body in [
                ("POST", INVITATIONS, {"email": unique_email(), "role": "member"}),
                ("GET", INVITATIONS, None),
                ("DELETE", f"{INVITATIONS}/{invitation['id']}", None),
            ]:
                response = await client.request(method, path, json=body, headers=account.headers)
                assert response.status_code == 403, (role, method, response.text)
        assert (await client.post(INVITATIONS, json={"email": unique_email()})).status_code == 401

    async def test_token_is_shown_once_and_joins_the_workspace_with_the_role(self, client):
        admin = await register(client)
        email = unique_email("joiner")
        invitation = await invite(client, admin, email=email.upper(), role="viewer")
        assert invitation["token"].startswith("rin_")
        assert invitation["email"] == email and invitation["role"] == "viewer"
        assert invitation["invited_by"] == admin.user["id"] and invitation["accepted_at"] is None
        listed = (await client.get(INVITATIONS, headers=admin.headers)).json()["data"]
        assert [i["id"] for i in listed] == [invitation["id"]]
        assert "token" not in listed[0] and "token_hash" not in listed[0]

        joined = await accept(client, invitation)
        assert joined.status_code == 201, joined.text
        data = joined.json()["data"]
        assert data["workspace"] == admin.workspace
        assert data["user"]["role"] == "viewer" and data["user"]["email"] == email
        me = (await client.get(ME, headers=bearer(data["access_token"]))).json()["data"]
        assert me["workspace"]["id"] == admin.workspace_id and me["user"]["role"] == "viewer"
        members = (await client.get(USERS, headers=admin.headers)).json()["data"]
        assert {m["id"] for m in members} == {admin.user["id"], data["user"]["id"]}
        after = (await client.get(INVITATIONS, headers=admin.headers)).json()["data"]
        assert after[0]["accepted_at"] is not None

    async def test_a_token_cannot_be_used_twice(self, client):
        admin = await register(client)
        invitation = await invite(client, admin)
        assert (await accept(client, invitation)).status_code == 201
        again = await accept(client, invitation)
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "invitation_not_found"

    async def test_another_email_is_refused_and_the_invitation_stays_usable(self, client):
        admin = await register(client)
        invitation = await invite(client, admin)
        wrong = await accept(client, invitation, email=unique_email("intruder"))
        assert wrong.status_code == 403
        assert wrong.json()["error"]["code"] == "invitation_email_mismatch"
        assert (await accept(client, invitation)).status_code == 201

    async def test_a_revoked_invitation_cannot_be_used(self, client):
        admin = await register(client)
        invitation = await invite(client, admin)
        revoked = await client.delete(f"{INVITATIONS}/{invitation['id']}", headers=admin.headers)
        assert revoked.status_code == 200
        assert revoked.json()["data"] == {"id": invitation["id"], "deleted": True}
        listed = (await client.get(INVITATIONS, headers=admin.headers)).json()["data"]
        assert listed[0]["revoked_at"] is not None
        response = await accept(client, invitation)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "invitation_not_found"
        # nothing was created: the email is still free for a plain sign-up
        await register(client, email=invitation["email"])

    async def test_an_expired_invitation_cannot_be_used(self, client, database):
        admin = await register(client)
        invitation = await invite(client, admin)
        async with database.write_sessions() as session, session.begin():
            await session.execute(
                update(Invitation.__table__)
                .where(Invitation.__table__.c.id == uuid.UUID(invitation["id"]))
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
        response = await accept(client, invitation)
        assert response.status_code == 404

    async def test_revoking_is_scoped_to_the_workspace(self, client):
        admin = await register(client)
        other = await register(client)
        invitation = await invite(client, admin)
        foreign = await client.delete(f"{INVITATIONS}/{invitation['id']}", headers=other.headers)
        assert foreign.status_code == 404
        unknown = await client.delete(f"{INVITATIONS}/{uuid.uuid4()}", headers=admin.headers)
        assert unknown.status_code == 404
        assert (await client.get(INVITATIONS, headers=other.headers)).json()["data"] == []
        assert (await accept(client, invitation)).status_code == 201

    async def test_list_paginates(self, client):
        admin = await register(client)
        created = [(await invite(client, admin))["id"] for _ in range(5)]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2, "include_total": "true", **({"cursor": cursor} if cursor else {})}
            response = await client.get(INVITATIONS, params=params, headers=admin.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["meta"]["limit"] == 2 and body["meta"]["total"] == 5
            assert len(body["data"]) <= 2
            seen.extend(row["id"] for row in body["data"])
            pages += 1
            if not body["meta"]["has_more"]:
                assert body["meta"]["next_cursor"] is None
                break
            cursor = body["meta"]["next_cursor"]
        assert pages == 3
        assert sorted(seen) == sorted(created) and len(set(seen)) == 5

    async def test_invalid_bodies_are_422(self, client):
        admin = await register(client)
        for body in (
            {"email": "nope"},
            {"email": unique_email(), "role": "owner"},
            {"email": unique_email(), "x": 1},
        ):
            response = await client.post(INVITATIONS, json=body, headers=admin.headers)
            assert response.status_code == 422, (body, response.text)


class TestUserList:
    async def test_lists_only_the_workspace_members(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        viewer = await add_member(client, admin, "viewer")
        outsider = await register(client)
        response = await client.get(USERS, headers=admin.headers)
        assert response.status_code == 200
        rows = response.json()["data"]
        assert [r["id"] for r in rows] == [admin.user["id"], member.user["id"], viewer.user["id"]]
        assert outsider.user["id"] not in {r["id"] for r in rows}
        assert {r["role"] for r in rows} == {"admin", "member", "viewer"}
        assert all("password_hash" not in r for r in rows)
        theirs = (await client.get(USERS, headers=outsider.headers)).json()["data"]
        assert [r["id"] for r in theirs] == [outsider.user["id"]]

    async def test_is_admin_only(self, client):
        admin = await register(client)
        for role in ("member", "viewer"):
            account = await add_member(client, admin, role)
            response = await client.get(USERS, headers=account.headers)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "forbidden"
            one = await client.get(f"{USERS}/{admin.user['id']}", headers=account.headers)
            assert one.status_code == 403
        assert (await client.get(USERS)).status_code == 401

    async def test_filters_and_sorts(self, client):
        admin = await register(client, email=unique_email("m-admin"))
        viewer_b = await add_member(client, admin, "viewer")
        viewer_a = await add_member(client, admin, "viewer")
        member = await add_member(client, admin, "member")
        await patch_user(client, admin, member.user["id"], {"is_active": False})

        viewers = (
            await client.get(USERS, params={"role": "viewer"}, headers=admin.headers)
        ).json()["data"]
        assert {r["id"] for r in viewers} == {viewer_a.user["id"], viewer_b.user["id"]}
        inactive = (
            await client.get(USERS, params={"is_active": "false"}, headers=admin.headers)
        ).json()["data"]
        assert [r["id"] for r in inactive] == [member.user["id"]]
        assert inactive[0]["is_active"] is False
        by_email = (
            await client.get(USERS, params={"sort_by": "email"}, headers=admin.headers)
        ).json()["data"]
        emails = [r["email"] for r in by_email]
        assert emails == sorted(emails) and len(emails) == 4
        desc = await client.get(
            USERS, params={"sort_by": "email", "sort_order": "desc"}, headers=admin.headers
        )
        assert [r["email"] for r in desc.json()["data"]] == sorted(emails, reverse=True)
        search = await client.get(USERS, params={"search": "m-admin"}, headers=admin.headers)
        assert [r["id"] for r in search.json()["data"]] == [admin.user["id"]]

    async def test_unknown_filters_and_sorts_are_422(self, client):
        admin = await register(client)
        for params in ({"password_hash": "x"}, {"sort_by": "password_hash"}, {"role": "owner"}):
            response = await client.get(USERS, params=params, headers=admin.headers)
            assert response.status_code == 422, (params, response.text)

    async def test_get_one_with_etag(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        response = await client.get(f"{USERS}/{member.user['id']}", headers=admin.headers)
        assert response.status_code == 200
        assert response.json()["data"]["email"] == member.email
        assert response.headers["etag"] == '"1"'


class TestRoleChanges:
    async def test_a_demotion_applies_to_tokens_already_issued(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        assert (
            await client.post(TAGS, json={"name": "before"}, headers=member.headers)
        ).status_code == 201
        response = await patch_user(client, admin, member.user["id"], {"role": "viewer"})
        assert response.status_code == 200, response.text
        assert response.json()["data"]["role"] == "viewer"
        assert response.json()["data"]["version"] == 2 and response.headers["etag"] == '"2"'
        refused = await client.post(TAGS, json={"name": "after"}, headers=member.headers)
        assert refused.status_code == 403
        assert (await client.get(TAGS, headers=member.headers)).status_code == 200
        me = (await client.get(ME, headers=member.headers)).json()["data"]
        assert me["user"]["role"] == "viewer"

    async def test_a_promotion_applies_at_once_too(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        assert (await client.get(USERS, headers=viewer.headers)).status_code == 403
        await patch_user(client, admin, viewer.user["id"], {"role": "admin"})
        assert (await client.get(USERS, headers=viewer.headers)).status_code == 200

    async def test_unknown_fields_and_roles_are_422(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        for body in ({"role": "owner"}, {"email": "x@example.com"}, {"is_active": "maybe"}):
            response = await patch_user(client, admin, member.user["id"], body)
            assert response.status_code == 422, (body, response.text)

    async def test_a_user_of_another_workspace_is_404(self, client):
        admin = await register(client)
        outsider = await register(client)
        for response in (
            await client.get(f"{USERS}/{outsider.user['id']}", headers=admin.headers),
            await patch_user(client, admin, outsider.user["id"], {"role": "viewer"}),
            await patch_user(client, admin, str(uuid.uuid4()), {"role": "viewer"}),
        ):
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "user_not_found"
        me = (await client.get(ME, headers=outsider.headers)).json()["data"]
        assert me["user"]["role"] == "admin"


class TestDeactivation:
    async def test_locks_out_tokens_and_api_keys_at_once_and_reactivation_restores(self, client):
        owner = await register(client)
        second_admin = await add_member(client, owner, "admin")
        key = await create_api_key(client, second_admin, "member")
        key_headers = bearer(key["key"])
        assert (await client.get(TAGS, headers=second_admin.headers)).status_code == 200
        assert (await client.get(TAGS, headers=key_headers)).status_code == 200

        off = await patch_user(client, owner, second_admin.user["id"], {"is_active": False})
        assert off.status_code == 200 and off.json()["data"]["is_active"] is False
        for headers in (second_admin.headers, key_headers):
            response = await client.get(TAGS, headers=headers)
            assert response.status_code == 401, response.text
        refresh = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": second_admin.refresh_token}
        )
        assert refresh.status_code == 401
        relogin = await client.post(
            "/api/v1/auth/login",
            json={"username_or_email": second_admin.email, "password": PASSWORD},
        )
        assert relogin.status_code == 401

        on = await patch_user(client, owner, second_admin.user["id"], {"is_active": True})
        assert on.status_code == 200 and on.json()["data"]["is_active"] is True
        assert (await client.get(TAGS, headers=second_admin.headers)).status_code == 200
        assert (await client.get(TAGS, headers=key_headers)).status_code == 200
        assert (await login(client, second_admin.email)).token

    async def test_requests_racing_the_deactivation_do_not_keep_access(self, client):
        for _ in range(10):
            admin = await register(client)
            member = await add_member(client, admin, "member")
            results = await asyncio.gather(
                patch_user(client, admin, member.user["id"], {"is_active": False}),
                *[client.get(TAGS, headers=member.headers) for _ in range(10)],
            )
            assert results[0].status_code == 200
            after = await client.get(TAGS, headers=member.headers)
            assert after.status_code == 401, "a racing request cached the active membership"

    async def test_deactivated_members_stay_listed(self, client, database):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        await patch_user(client, admin, member.user["id"], {"is_active": False})
        async with database.read_sessions() as session:
            row = (
                (
                    await session.execute(
                        select(Membership.__table__).where(
                            Membership.__table__.c.workspace_id == uuid.UUID(admin.workspace_id),
                            Membership.__table__.c.user_id == uuid.UUID(member.user["id"]),
                        )
                    )
                )
                .mappings()
                .one()
            )
        assert row["is_active"] is False and row["role"] == "member"


class TestLastAdmin:
    async def test_the_last_admin_cannot_be_demoted_or_deactivated(self, client):
        admin = await register(client)
        for body in (
            {"role": "member"},
            {"is_active": False},
            {"role": "viewer", "is_active": False},
        ):
            response = await patch_user(client, admin, admin.user["id"], body)
            assert response.status_code == 409, (body, response.text)
            assert response.json()["error"]["code"] == "last_admin"
        assert (await client.get(USERS, headers=admin.headers)).status_code == 200

    async def test_an_inactive_admin_does_not_count(self, client):
        admin = await register(client)
        other = await add_member(client, admin, "admin")
        assert (
            await patch_user(client, admin, other.user["id"], {"is_active": False})
        ).status_code == 200
        response = await patch_user(client, admin, admin.user["id"], {"role": "member"})
        assert response.status_code == 409

    async def test_with_two_admins_one_may_step_down(self, client):
        admin = await register(client)
        other = await add_member(client, admin, "admin")
        assert (
            await patch_user(client, admin, admin.user["id"], {"role": "member"})
        ).status_code == 200
        assert (await client.get(USERS, headers=admin.headers)).status_code == 403
        last = await patch_user(client, other, other.user["id"], {"role": "member"})
        assert last.status_code == 409 and last.json()["error"]["code"] == "last_admin"

    async def test_two_admins_demoting_each_other_at_once_leave_one_admin(self, client):
        first = await register(client)
        second = await add_member(client, first, "admin")
        results = await asyncio.gather(
            patch_user(client, first, second.user["id"], {"role": "member"}),
            patch_user(client, second, first.user["id"], {"role": "member"}),
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses[0] == 200, [r.text for r in results]
        assert statuses[1] in (401, 403, 409), [r.text for r in results]
        admins = []
        for account in (first, second):
            me = (await client.get(ME, headers=account.headers)).json()["data"]
            admins += [me["user"]["id"]] if me["user"]["role"] == "admin" else []
        assert len(admins) == 1, "a workspace needs exactly one admin left"


class TestIfMatch:
    async def test_stale_version_is_412_and_current_version_applies(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        path = f"{USERS}/{member.user['id']}"
        etag = (await client.get(path, headers=admin.headers)).headers["etag"]
        assert (
            await patch_user(
                client, admin, member.user["id"], {"role": "viewer"}, **{"If-Match": etag}
            )
        ).status_code == 200
        stale = await patch_user(
            client, admin, member.user["id"], {"role": "member"}, **{"If-Match": etag}
        )
        assert stale.status_code == 412
        assert stale.json()["error"]["code"] == "version_mismatch"
        current = await client.get(path, headers=admin.headers)
        assert current.json()["data"]["role"] == "viewer" and current.headers["etag"] == '"2"'
        fresh = await patch_user(
            client, admin, member.user["id"], {"role": "member"}, **{"If-Match": '"2"'}
        )
        assert fresh.status_code == 200 and fresh.headers["etag"] == '"3"'


class TestRoles:
    async def test_viewer_cannot_write_and_member_can(self, client):
        admin = await register(client)
        viewer = await add_member(client, admin, "viewer")
        member = await add_member(client, admin, "member")
        refused = await client.post(TAGS, json={"name": "by-viewer"}, headers=viewer.headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        created = await client.post(TAGS, json={"name": "by-member"}, headers=member.headers)
        assert created.status_code == 201
        listed = (await client.get(TAGS, headers=viewer.headers)).json()["data"]
        assert [t["name"] for t in listed] == ["by-member"]

    async def test_member_cannot_manage_users(self, client):
        admin = await register(client)
        member = await add_member(client, admin, "member")
        response = await patch_user(client, member, member.user["id"], {"role": "admin"})
        assert response.status_code == 403
        me = (await client.get(ME, headers=member.headers)).json()["data"]
        assert me["user"]["role"] == "member"
