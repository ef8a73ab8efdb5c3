"""Routes for authentication (/auth), workspace members (/users) and API keys (/api-keys)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordRequestForm

from rapport.core.auth import AdminDep, PrincipalDep
from rapport.core.envelope import Deleted, Envelope, EnvelopeResponse, ListEnvelope, dumps, ok
from rapport.core.listing import ListParams
from rapport.core.responses import errors
from rapport.core.routing import PUBLIC, ContractRouter, IfMatchDep, SessionDep, etag_headers
from rapport.identity.dependencies import SecurityDep
from rapport.identity.repository import API_KEY_LISTING, INVITATION_LISTING, MEMBER_LISTING
from rapport.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    InvitationCreate,
    InvitationCreated,
    InvitationRead,
    LoginRequest,
    Me,
    OAuth2Token,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserRead,
    UserUpdate,
)
from rapport.identity.service import (
    ApiKeyService,
    AuthService,
    MemberService,
    api_key_read,
    invitation_read,
    member_read,
)

auth_router = ContractRouter(prefix="/auth", tags=["auth"])
users_router = ContractRouter(prefix="/users", tags=["users"])
api_keys_router = ContractRouter(prefix="/api-keys", tags=["api-keys"])

PUBLIC_ERRORS = errors(400, 401, 403, 409, 422, 429, common=False)


@auth_router.post(
    "/register",
    name="auth-register",
    summary="Sign up: a new workspace, or join one by invitation",
    status_code=201,
    response_model=Envelope[TokenPair],
    responses=PUBLIC_ERRORS,
    openapi_extra=PUBLIC,
)
async def register(
    body: RegisterRequest, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    return ok(await AuthService(session, security).register(body), status_code=201)


@auth_router.post(
    "/login",
    name="auth-login",
    summary="Log in with username or email and password",
    response_model=Envelope[TokenPair],
    responses=PUBLIC_ERRORS,
    openapi_extra=PUBLIC,
)
async def login(body: LoginRequest, session: SessionDep, security: SecurityDep) -> EnvelopeResponse:
    return ok(await AuthService(session, security).login(body))


@auth_router.post(
    "/token",
    name="auth-token",
    summary="OAuth2 password form for Swagger's Authorize button (answers the bare OAuth2 shape)",
    response_model=OAuth2Token,
    responses=PUBLIC_ERRORS,
    openapi_extra=PUBLIC,
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    security: SecurityDep,
) -> EnvelopeResponse:
    result = await AuthService(session, security).login(
        LoginRequest(username_or_email=form.username, password=form.password)
    )
    body = {k: result[k] for k in ("access_token", "token_type", "expires_in", "refresh_token")}
    return EnvelopeResponse(dumps(body))


@auth_router.post(
    "/refresh",
    name="auth-refresh",
    summary="Swap a refresh token for new tokens (rotation; a reused token revokes its session)",
    response_model=Envelope[TokenPair],
    responses=PUBLIC_ERRORS,
    openapi_extra=PUBLIC,
)
async def refresh(
    body: RefreshRequest, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    return ok(await AuthService(session, security).refresh(body.refresh_token))


@auth_router.post(
    "/logout",
    name="auth-logout",
    summary="End the current session (its access and refresh tokens)",
    response_model=Envelope[dict[str, bool]],
    responses=errors(400),
)
async def logout(
    principal: PrincipalDep, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    await AuthService(session, security).logout(principal)
    return ok({"logged_out": True})


@auth_router.get(
    "/me",
    name="auth-me",
    summary="The caller: user, workspace, role and credential type",
    response_model=Envelope[Me],
    responses=errors(),
)
async def me(
    principal: PrincipalDep, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    return ok(await AuthService(session, security).me(principal))


# -- members --------------------------------------------------------------------------------------
@users_router.get(
    "",
    name="users-list",
    summary="List the workspace's users (admin)",
    response_model=ListEnvelope[UserRead],
    responses=errors(),
    openapi_extra={"parameters": MEMBER_LISTING.openapi_parameters()},
)
async def list_users(
    principal: AdminDep,
    session: SessionDep,
    security: SecurityDep,
    params: Annotated[ListParams, Depends(MEMBER_LISTING.params)],
) -> EnvelopeResponse:
    page = await MemberService(session, security, principal).list(params)
    return ok([member_read(r) for r in page.rows], meta=page.meta())


@users_router.post(
    "/invitations",
    name="users-invite",
    summary="Invite someone by email with a role (admin)",
    status_code=201,
    response_model=Envelope[InvitationCreated],
    responses=errors(409),
)
async def invite(
    body: InvitationCreate, principal: AdminDep, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    return ok(await MemberService(session, security, principal).invite(body), status_code=201)


@users_router.get(
    "/invitations",
    name="users-invitations-list",
    summary="List invitations (admin)",
    response_model=ListEnvelope[InvitationRead],
    responses=errors(),
    openapi_extra={"parameters": INVITATION_LISTING.openapi_parameters()},
)
async def list_invitations(
    principal: AdminDep,
    session: SessionDep,
    security: SecurityDep,
    params: Annotated[ListParams, Depends(INVITATION_LISTING.params)],
) -> EnvelopeResponse:
    page = await MemberService(session, security, principal).invitations(params)
    return ok([invitation_read(r) for r in page.rows], meta=page.meta())


@users_router.delete(
    "/invitations/{invitation_id}",
    name="users-invitations-revoke",
    summary="Revoke an invitation (admin)",
    response_model=Envelope[Deleted],
    responses=errors(404),
)
async def revoke_invitation(
    invitation_id: uuid.UUID, principal: AdminDep, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    await MemberService(session, security, principal).revoke_invitation(invitation_id)
    return ok({"id": str(invitation_id), "deleted": True})


@users_router.get(
    "/{user_id}",
    name="users-get",
    summary="Get one user of the workspace (admin)",
    response_model=Envelope[UserRead],
    responses=errors(404),
)
async def get_user(
    user_id: uuid.UUID, principal: AdminDep, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    row = await MemberService(session, security, principal).get(user_id)
    return ok(member_read(row), headers=etag_headers(row["version"]))


@users_router.patch(
    "/{user_id}",
    name="users-update",
    summary="Change a user's role or deactivate them (admin); takes effect at once",
    response_model=Envelope[UserRead],
    responses=errors(404, 409, 412),
)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdate,
    principal: AdminDep,
    session: SessionDep,
    security: SecurityDep,
    if_match: IfMatchDep,
) -> EnvelopeResponse:
    row = await MemberService(session, security, principal).update(user_id, body, if_match)
    return ok(member_read(row), headers=etag_headers(row["version"]))


# -- API keys --------------------------------------------------------------------------------------
@api_keys_router.post(
    "",
    name="api-keys-create",
    summary="Create an API key (admin); the key is shown once",
    status_code=201,
    response_model=Envelope[ApiKeyCreated],
    responses=errors(),
)
async def create_api_key(
    body: ApiKeyCreate, principal: AdminDep, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    return ok(await ApiKeyService(session, security, principal).create(body), status_code=201)


@api_keys_router.get(
    "",
    name="api-keys-list",
    summary="List API keys (admin); secrets are never shown again",
    response_model=ListEnvelope[ApiKeyRead],
    responses=errors(),
    openapi_extra={"parameters": API_KEY_LISTING.openapi_parameters()},
)
async def list_api_keys(
    principal: AdminDep,
    session: SessionDep,
    security: SecurityDep,
    params: Annotated[ListParams, Depends(API_KEY_LISTING.params)],
) -> EnvelopeResponse:
    page = await ApiKeyService(session, security, principal).list(params)
    return ok([api_key_read(r) for r in page.rows], meta=page.meta())


@api_keys_router.delete(
    "/{key_id}",
    name="api-keys-revoke",
    summary="Revoke an API key (admin); it stops working at once",
    response_model=Envelope[Deleted],
    responses=errors(404),
)
async def revoke_api_key(
    key_id: uuid.UUID, principal: AdminDep, session: SessionDep, security: SecurityDep
) -> EnvelopeResponse:
    await ApiKeyService(session, security, principal).revoke(key_id)
    return ok({"id": str(key_id), "deleted": True})
