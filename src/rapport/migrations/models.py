"""Every table's model, imported so Alembic sees the whole schema."""

from rapport.core.events import Event  # noqa: F401
from rapport.core.idempotency import IdempotencyRecord  # noqa: F401
from rapport.core.jobs import Job  # noqa: F401
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
from rapport.activities.models import Activity  # noqa: E402,F401
from rapport.companies.models import Company  # noqa: E402,F401
from rapport.contacts.models import Contact, ContactCompany  # noqa: E402,F401
from rapport.custom_fields.models import CustomFieldDefinition  # noqa: E402,F401
from rapport.deals.models import Deal, DealStageChange, Pipeline, Stage  # noqa: E402,F401
from rapport.leads.models import Lead  # noqa: E402,F401
from rapport.search.models import SearchDocument  # noqa: E402,F401
from rapport.tasks.models import Task  # noqa: E402,F401

# Indexes created in raw SQL by migrations (PostgreSQL GIN indexes; the SQLite FTS5 table and its
# triggers): they have no model counterpart, so autogenerate must not propose dropping them.
RAW_SQL_INDEXES = frozenset(
    {"ix_search_document_trgm"}
    | {f"ix_{table}_tags" for table in ("contact", "company", "lead", "deal", "activity", "task")}
    # Task sort expressions PostgreSQL reflects in a form autogenerate cannot compare (0004).
    | {"ix_task_sort_due", "ix_task_sort_priority"}
)
from rapport.audit.models import AuditEntry  # noqa: E402,F401
from rapport.imports.models import CsvExport, CsvImport, CsvImportError  # noqa: E402,F401
from rapport.notifications.models import Notification, NotificationHolder  # noqa: E402,F401
from rapport.webhooks.models import (  # noqa: E402,F401
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
