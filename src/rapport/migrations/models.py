"""Every table's model, imported so Alembic sees the whole schema."""

from rapport.core.events import Event  # noqa: F401
from rapport.core.idempotency import IdempotencyRecord  # noqa: F401
from rapport.core.models import Base
from rapport.identity.models import (  # noqa: F401
    ApiKey,
    AuthSession,
    Invitation,
    Membership,
    RefreshToken,
    User,
    Workspace,
)
from rapport.tags.models import Tag  # noqa: F401

metadata = Base.metadata
