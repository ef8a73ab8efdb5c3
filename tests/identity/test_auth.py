"""Authentication through HTTP: sign-up, login (JSON and OAuth2 form), per-account login limits,
refresh-token rotation with reuse detection, logout and /auth/me."""

from __future__ import annotations

import asyncio
import uuid

from rapport.main import create_app
from tests.conftest import base_settings, client_for
from tests.factories import PASSWORD, add_member, create_api_key, login, register, unique_email

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def app_with(settings, database, **overrides):  # noqa: ANN001, ANN201
    return create_app(base_settings(database_url=settings.database_url, **overrides), db=database)


async def refresh(client, token: str):  # noqa: ANN001, ANN201
    return await client.post(REFRESH, json={"refresh_token": token})


class TestRegister:
    async def test_creates_a_workspace_with_the_user_as_admin(self, client):
        email = unique_email("founder")
        response = await client.post(
            REGISTER,
            json={
                "email": email,
                "password": PASSWORD,
                "full_name": "Ada Lovelace",
                "username": f"ada_{uuid.uuid4().hex[:8]}",
                "workspace_name": "Analytical Engines",
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["success"] is True and body["error"] is None and body["meta"]["request_id"]
        data = body["data"]
        assert data["token_type"] == "bearer"
        assert data["access_token"] and data["refresh_token"]
        assert data["expires_in"] == 15 * 60
        user = data["user"]
        assert {
            "id",
            "email",
            "username",
            "full_name",
            "role",
            "is_active",
            "created_at",
            "updated_at",
            "version",
        } <= set(user)
        assert user["email"] == email and user["full_name"] == "Ada Lovelace"
        assert user["role"] == "admin" and user["is_active"] is True
        assert "password" not in str(user) and "hash" not in str(user)
        assert set(data["workspace"]) == {"id", "name"}
        assert data["workspace"]["name"] == "Analytical Engines"
        assert uuid.UUID(data["workspace"]["id"]) and uuid.UUID(user["id"])

        me = await client.get(ME, headers=bearer(data["access_token"]))
        assert me.status_code == 200
        assert me.json()["data"]["workspace"] == data["workspace"]
        assert me.json()["data"]["user"]["role"] == "admin"
        members = await client.get("/api/v1/users", headers=bearer(data["access_token"]))
        assert [u["id"] for u in members.json()["data"]] == [user["id"]]

    async def test_every_sign_up_gets_its_own_workspace(self, client):
        first = await register(client, full_name="Grace Hopper")
        second = await register(client)
        assert first.workspace_id != second.workspace_id
        assert first.workspace["name"] == "Grace Hopper's workspace"

    async def test_email_is_stored_lower_case(self, client):
        email = unique_email("Mixed").replace("Mixed", "MiXeD")
        account = await register(client, email=email)
        assert account.user["email"] == email.lower()

    async def test_duplicate_email_is_409_whatever_the_case(self, client):
        email = unique_email("dup")
        await register(client, email=email)
        for candidate in (email, email.upper(), f"  {email.title()}  "):
            response = await client.post(
                REGISTER, json={"email": candidate, "password": PASSWORD, "full_name": "Copy"}
            )
            assert response.status_code == 409, (candidate, response.text)
            assert response.json()["error"]["code"] == "email_taken"

    async def test_duplicate_username_is_409_whatever_the_case(self, client):
        username = f"user_{uuid.uuid4().hex[:10]}"
        await register(client, username=username)
        response = await client.post(
            REGISTER,
            json={
                "email": unique_email(),
                "password": PASSWORD,
                "full_name": "Copy",
                "username": username.upper(),
            },
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "username_taken"

    async def test_weak_password_is_422(self, client):
        response = await client.post(
            REGISTER, json={"email": unique_email(), "password": "short", "full_name": "Weak"}
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert response.json()["error"]["details"][0]["field"] == "body.password"

    async def test_invalid_email_is_422(self, client):
        response = await client.post(
            REGISTER, json={"email": "not-an-email", "password": PASSWORD, "full_name": "Nobody"}
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "body.email"

    async def test_invalid_username_and_unknown_fields_are_422(self, client):
        for extra in ({"username": "a b"}, {"username": "ab"}, {"role": "admin"}):
            response = await client.post(
                REGISTER,
                json={"email": unique_email(), "password": PASSWORD, "full_name": "X", **extra},
            )
            assert response.status_code == 422, (extra, response.text)

    async def test_unknown_invitation_token_is_404(self, client):
        response = await client.post(
            REGISTER,
            json={
                "email": unique_email(),
                "password": PASSWORD,
                "full_name": "X",
                "invitation_token": "rin_nope",
            },
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "invitation_not_found"


class TestSignupDisabled:
    async def test_plain_sign_up_is_refused(self, settings, database):
        async with client_for(app_with(settings, database, allow_signup=False)) as closed:
            email = unique_email("closed")
            response = await closed.post(
                REGISTER, json={"email": email, "password": PASSWORD, "full_name": "Closed Out"}
            )
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "signup_disabled"
            # nothing was created: the email is still free
            unknown = await closed.post(
                LOGIN, json={"username_or_email": email, "password": PASSWORD}
            )
            assert unknown.status_code == 401

    async def test_an_invitation_token_is_still_accepted(self, client, settings, database):
        admin = await register(client)
        email = unique_email("invitee")
        invited = await client.post(
            "/api/v1/users/invitations",
            json={"email": email, "role": "viewer"},
            headers=admin.headers,
        )
        assert invited.status_code == 201
        async with client_for(app_with(settings, database, allow_signup=False)) as closed:
            response = await closed.post(
                REGISTER,
                json={
                    "email": email,
                    "password": PASSWORD,
                    "full_name": "Invited",
                    "invitation_token": invited.json()["data"]["token"],
                },
            )
            assert response.status_code == 201, response.text
            data = response.json()["data"]
            assert data["workspace"]["id"] == admin.workspace_id
            assert data["user"]["role"] == "viewer"


class TestLogin:
    async def test_by_email_case_insensitively(self, client):
        account = await register(client)
        response = await client.post(
            LOGIN, json={"username_or_email": account.email.upper(), "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["token_type"] == "bearer" and data["expires_in"] == 15 * 60
        assert data["user"]["id"] == account.user["id"]
        assert data["workspace"] == account.workspace
        assert data["refresh_token"] != account.refresh_token
        assert data["user"]["last_login_at"] is not None
        me = await client.get(ME, headers=bearer(data["access_token"]))
        assert me.status_code == 200 and me.json()["data"]["user"]["id"] == account.user["id"]

    async def test_by_username_case_insensitively(self, client):
        username = f"Lin_{uuid.uuid4().hex[:8]}"
        account = await register(client, username=username)
        assert account.user["username"] == username.lower()
        response = await client.post(
            LOGIN, json={"username_or_email": username.upper(), "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["user"]["id"] == account.user["id"]

    async def test_wrong_password_and_unknown_user_answer_the_same(self, client):
        account = await register(client)
        wrong = await client.post(
            LOGIN, json={"username_or_email": account.email, "password": "wrong password"}
        )
        unknown = await client.post(
            LOGIN, json={"username_or_email": unique_email("ghost"), "password": PASSWORD}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["error"] == unknown.json()["error"]
        assert wrong.json()["error"]["code"] == "invalid_credentials"
        assert wrong.headers["www-authenticate"] == "Bearer"

    async def test_missing_fields_are_422(self, client):
        response = await client.post(LOGIN, json={"username_or_email": "someone"})
        assert response.status_code == 422


class TestOAuth2Token:
    async def test_form_login_answers_the_bare_oauth2_shape(self, client):
        account = await register(client)
        response = await client.post(TOKEN, data={"username": account.email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "success" not in body and "data" not in body
        assert body["token_type"] == "bearer" and body["access_token"]
        me = await client.get(ME, headers=bearer(body["access_token"]))
        assert me.status_code == 200
        assert me.json()["data"]["user"]["id"] == account.user["id"]
        assert me.json()["data"]["credential"] == "user"

    async def test_form_login_with_a_wrong_password_is_401(self, client):
        account = await register(client)
        response = await client.post(
            TOKEN, data={"username": account.email, "password": "nope nope"}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"

    async def test_json_is_refused_without_a_server_error(self, client):
        account = await register(client)
        response = await client.post(TOKEN, json={"username": account.email, "password": PASSWORD})
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["success"] is False

    async def test_other_media_types_are_415(self, client):
        response = await client.post(
            TOKEN, content=b"username=a&password=b", headers={"Content-Type": "text/plain"}
        )
        assert response.status_code == 415


class TestLoginLimitPerAccount:
    async def test_fourth_attempt_for_one_account_is_429_while_others_log_in(
        self, settings, database
    ):
        async with client_for(
            app_with(settings, database, rate_limit_login_account="3/minute")
        ) as c:
            target = await register(c)
            other = await register(c)
            statuses = [
                (
                    await c.post(
                        LOGIN, json={"username_or_email": target.email, "password": "wrong guess"}
                    )
                ).status_code
                for _ in range(2)
            ]
            statuses.append(
                (
                    await c.post(
                        LOGIN, json={"username_or_email": target.email, "password": PASSWORD}
                    )
                ).status_code
            )
            assert statuses == [401, 401, 200]
            blocked = await c.post(
                LOGIN, json={"username_or_email": target.email, "password": PASSWORD}
            )
            assert blocked.status_code == 429, blocked.text
            assert blocked.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(blocked.headers["retry-after"]) <= 60
            form = await c.post(
                TOKEN, data={"username": target.email.upper(), "password": PASSWORD}
            )
            assert form.status_code == 429  # the same account by another door and spelling
            assert (await login(c, other.email)).token

    async def test_email_and_username_count_for_the_same_account(self, settings, database):
        async with client_for(
            app_with(settings, database, rate_limit_login_account="3/minute")
        ) as c:
            username = f"acct_{uuid.uuid4().hex[:8]}"
            target = await register(c, username=username)
            for identifier in (target.email, username, target.email):
                response = await c.post(
                    LOGIN, json={"username_or_email": identifier, "password": "wrong guess"}
                )
                assert response.status_code == 401
            blocked = await c.post(
                LOGIN, json={"username_or_email": username, "password": PASSWORD}
            )
            assert blocked.status_code == 429, blocked.text


class TestRefresh:
    async def test_rotation_returns_new_tokens_and_spends_the_old_one(self, client):
        account = await register(client)
        response = await refresh(client, account.refresh_token)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data["refresh_token"] != account.refresh_token
        assert data["access_token"] != account.token
        assert data["token_type"] == "bearer" and data["expires_in"] == 15 * 60
        assert data["user"]["id"] == account.user["id"] and data["workspace"] == account.workspace
        assert (await client.get(ME, headers=bearer(data["access_token"]))).status_code == 200
        again = await refresh(client, data["refresh_token"])
        assert again.status_code == 200  # the new token is live

    async def test_reusing_a_spent_token_revokes_the_whole_family(self, client):
        account = await register(client)
        other_session = await login(client, account.email)
        first = (await refresh(client, account.refresh_token)).json()["data"]
        second = (await refresh(client, first["refresh_token"])).json()["data"]

        reused = await refresh(client, account.refresh_token)
        assert reused.status_code == 401
        assert reused.json()["error"]["code"] == "refresh_token_reused"

        newest = await refresh(client, second["refresh_token"])
        assert newest.status_code == 401
        for token in (account.token, first["access_token"], second["access_token"]):
            assert (await client.get(ME, headers=bearer(token))).status_code == 401

        assert (await client.get(ME, headers=other_session.headers)).status_code == 200
        assert (await refresh(client, other_session.refresh_token)).status_code == 200

    async def test_garbage_tokens_are_401(self, client):
        for token in ("garbage", "rrt_" + "x" * 40):
            response = await refresh(client, token)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_refresh_token"

    async def test_an_access_token_is_not_a_refresh_token(self, client):
        account = await register(client)
        response = await refresh(client, account.token[:200])
        assert response.status_code == 401


class TestLogout:
    async def test_ends_the_session_at_once(self, client):
        account = await register(client)
        assert (await client.get(ME, headers=account.headers)).status_code == 200
        response = await client.post(LOGOUT, headers=account.headers)
        assert response.status_code == 200
        assert response.json()["data"] == {"logged_out": True}
        after = await client.get(ME, headers=account.headers)
        assert after.status_code == 401
        assert after.json()["error"]["code"] == "session_revoked"
        assert (await refresh(client, account.refresh_token)).status_code == 401

    async def test_requests_racing_the_logout_do_not_keep_the_session_alive(self, client):
        for _ in range(10):
            account = await register(client)
            results = await asyncio.gather(
                client.post(LOGOUT, headers=account.headers),
                *[client.get(ME, headers=account.headers) for _ in range(10)],
            )
            assert results[0].status_code == 200
            after = await client.get(ME, headers=account.headers)
            assert after.status_code == 401, "a racing request cached the ended session"

    async def test_other_sessions_stay_logged_in(self, client):
        account = await register(client)
        laptop = await login(client, account.email)
        assert (await client.post(LOGOUT, headers=account.headers)).status_code == 200
        assert (await client.get(ME, headers=laptop.headers)).status_code == 200

    async def test_an_api_key_cannot_log_out(self, client):
        admin = await register(client)
        key = await create_api_key(client, admin, "member")
        response = await client.post(LOGOUT, headers=bearer(key["key"]))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "not_a_session"
        assert (await client.get(ME, headers=bearer(key["key"]))).status_code == 200

    async def test_without_credentials_is_401(self, client):
        assert (await client.post(LOGOUT)).status_code == 401


class TestMe:
    async def test_shows_user_workspace_and_credential(self, client):
        admin = await register(client, workspace_name="Me Corp")
        member = await add_member(client, admin, "member")
        response = await client.get(ME, headers=member.headers)
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["credential"] == "user"
        assert data["user"]["id"] == member.user["id"] and data["user"]["email"] == member.email
        assert data["user"]["role"] == "member"
        assert data["workspace"] == {"id": admin.workspace_id, "name": "Me Corp"}

    async def test_needs_a_valid_token(self, client):
        assert (await client.get(ME)).status_code == 401
        bad = await client.get(ME, headers=bearer("not.a.jwt"))
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_token"
