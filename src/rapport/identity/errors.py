from rapport.core.errors import Conflict, Forbidden, NotFound, Unauthorized


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Wrong username, email or password."


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    message = "The refresh token is invalid or expired."


class RefreshTokenReused(Unauthorized):
    code = "refresh_token_reused"
    message = "This refresh token was already used; the session has been revoked. Log in again."


class SignupDisabled(Forbidden):
    code = "signup_disabled"
    message = "Sign-up is disabled on this server; ask an admin for an invitation."


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."


class UsernameTaken(Conflict):
    code = "username_taken"
    message = "This username is taken."


class InvitationInvalid(NotFound):
    code = "invitation_not_found"
    message = "The invitation does not exist, has expired, or was already used."


class InvitationEmailMismatch(Forbidden):
    code = "invitation_email_mismatch"
    message = "This invitation was sent to another email address."


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "User not found."


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    message = "API key not found."


class LastAdmin(Conflict):
    code = "last_admin"
    message = "A workspace needs at least one active admin."


class RoleTooHigh(Forbidden):
    code = "role_not_allowed"
    message = "An API key cannot have more rights than its creator."
