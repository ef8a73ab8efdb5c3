"""core records

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 20:37:23.575135
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "search_document",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("subtitle", sa.String(length=500), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "resource", "record_id", name=op.f("pk_search_document")
        ),
    )
    with op.batch_alter_table("search_document", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_document_rank", ["workspace_id", "resource", "updated_at"], unique=False
        )

    op.create_table(
        "custom_field_definition",
        sa.Column("resource", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_custom_field_definition_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_custom_field_definition")),
        sa.UniqueConstraint(
            "workspace_id",
            "resource",
            "name",
            name=op.f("uq_custom_field_definition_workspace_id_resource_name"),
        ),
    )
    op.create_table(
        "pipeline",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_pipeline_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_pipeline")),
    )
    with op.batch_alter_table("pipeline", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pipeline_workspace_position", ["workspace_id", "position", "id"], unique=False
        )

    op.create_table(
        "company",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("industry", sa.String(length=100), nullable=True),
        sa.Column("size", sa.String(length=20), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column(
            "address",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("notes", sa.String(length=10000), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["membership.workspace_id", "membership.user_id"],
            name=op.f("fk_company_workspace_id_owner_id_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_company_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_company")),
    )
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.create_index(
            "ix_company_workspace_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_company_workspace_industry", ["workspace_id", "industry"], unique=False
        )
        batch_op.create_index(
            "ix_company_workspace_name", ["workspace_id", "name", "id"], unique=False
        )
        batch_op.create_index(
            "ix_company_workspace_owner", ["workspace_id", "owner_id"], unique=False
        )
        batch_op.create_index(
            "ix_company_workspace_phone", ["workspace_id", "phone_e164"], unique=False
        )
        batch_op.create_index(
            "ix_company_workspace_updated", ["workspace_id", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "uq_company_live_domain",
            ["workspace_id", "domain"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL AND domain IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NULL AND domain IS NOT NULL"),
        )

    op.create_table(
        "stage",
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("is_won", sa.Boolean(), nullable=False),
        sa.Column("is_lost", sa.Boolean(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipeline.workspace_id", "pipeline.id"],
            name=op.f("fk_stage_workspace_id_pipeline_id_pipeline"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_stage_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_stage")),
        sa.UniqueConstraint(
            "workspace_id",
            "pipeline_id",
            "name",
            name=op.f("uq_stage_workspace_id_pipeline_id_name"),
        ),
    )
    with op.batch_alter_table("stage", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stage_pipeline_position", ["workspace_id", "pipeline_id", "position"], unique=False
        )

    op.create_table(
        "contact",
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("job_title", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column(
            "address",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("notes", sa.String(length=10000), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("primary_company_id", sa.Uuid(), nullable=True),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["membership.workspace_id", "membership.user_id"],
            name=op.f("fk_contact_workspace_id_owner_id_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "primary_company_id"],
            ["company.workspace_id", "company.id"],
            name=op.f("fk_contact_workspace_id_primary_company_id_company"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_contact_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_contact")),
    )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_workspace_company", ["workspace_id", "primary_company_id"], unique=False
        )
        batch_op.create_index(
            "ix_contact_workspace_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_contact_workspace_last_name", ["workspace_id", "last_name", "id"], unique=False
        )
        batch_op.create_index(
            "ix_contact_workspace_owner", ["workspace_id", "owner_id"], unique=False
        )
        batch_op.create_index(
            "ix_contact_workspace_phone", ["workspace_id", "phone_e164"], unique=False
        )
        batch_op.create_index(
            "ix_contact_workspace_status", ["workspace_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_contact_workspace_updated", ["workspace_id", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "uq_contact_live_email",
            ["workspace_id", "email"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL AND email IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NULL AND email IS NOT NULL"),
        )

    op.create_table(
        "contact_company",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name=op.f("fk_contact_company_workspace_id_company_id_company"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contact.workspace_id", "contact.id"],
            name=op.f("fk_contact_company_workspace_id_contact_id_contact"),
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "contact_id", "company_id", name=op.f("pk_contact_company")
        ),
    )
    with op.batch_alter_table("contact_company", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_company_company", ["workspace_id", "company_id"], unique=False
        )

    op.create_table(
        "deal",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("stage_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("expected_close_date", sa.Date(), nullable=True),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("won_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_reason", sa.String(length=500), nullable=True),
        sa.Column("notes", sa.String(length=10000), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name=op.f("fk_deal_workspace_id_company_id_company"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contact.workspace_id", "contact.id"],
            name=op.f("fk_deal_workspace_id_contact_id_contact"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["membership.workspace_id", "membership.user_id"],
            name=op.f("fk_deal_workspace_id_owner_id_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "pipeline_id"],
            ["pipeline.workspace_id", "pipeline.id"],
            name=op.f("fk_deal_workspace_id_pipeline_id_pipeline"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "stage_id"],
            ["stage.workspace_id", "stage.id"],
            name=op.f("fk_deal_workspace_id_stage_id_stage"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_deal_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_deal")),
    )
    with op.batch_alter_table("deal", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deal_workspace_amount", ["workspace_id", "amount", "id"], unique=False
        )
        batch_op.create_index(
            "ix_deal_workspace_close", ["workspace_id", "expected_close_date", "id"], unique=False
        )
        batch_op.create_index(
            "ix_deal_workspace_company", ["workspace_id", "company_id"], unique=False
        )
        batch_op.create_index(
            "ix_deal_workspace_contact", ["workspace_id", "contact_id"], unique=False
        )
        batch_op.create_index(
            "ix_deal_workspace_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_deal_workspace_owner", ["workspace_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_deal_workspace_pipeline", ["workspace_id", "pipeline_id", "status"], unique=False
        )
        batch_op.create_index("ix_deal_workspace_stage", ["workspace_id", "stage_id"], unique=False)
        batch_op.create_index("ix_deal_workspace_status", ["workspace_id", "status"], unique=False)
        batch_op.create_index(
            "ix_deal_workspace_updated", ["workspace_id", "updated_at", "id"], unique=False
        )

    op.create_table(
        "deal_stage_change",
        sa.Column("deal_id", sa.Uuid(), nullable=False),
        sa.Column("from_stage_id", sa.Uuid(), nullable=True),
        sa.Column("to_stage_id", sa.Uuid(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "deal_id"],
            ["deal.workspace_id", "deal.id"],
            name=op.f("fk_deal_stage_change_workspace_id_deal_id_deal"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_deal_stage_change_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_deal_stage_change")),
    )
    with op.batch_alter_table("deal_stage_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deal_stage_change_deal", ["workspace_id", "deal_id", "changed_at"], unique=False
        )

    op.create_table(
        "lead",
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=100), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("company_name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.Column("value", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("budget_min", sa.BigInteger(), nullable=True),
        sa.Column("budget_max", sa.BigInteger(), nullable=True),
        sa.Column("notes", sa.String(length=10000), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("activity_count", sa.Integer(), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("converted_contact_id", sa.Uuid(), nullable=True),
        sa.Column("converted_company_id", sa.Uuid(), nullable=True),
        sa.Column("converted_deal_id", sa.Uuid(), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "converted_company_id"],
            ["company.workspace_id", "company.id"],
            name=op.f("fk_lead_workspace_id_converted_company_id_company"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "converted_contact_id"],
            ["contact.workspace_id", "contact.id"],
            name=op.f("fk_lead_workspace_id_converted_contact_id_contact"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "converted_deal_id"],
            ["deal.workspace_id", "deal.id"],
            name=op.f("fk_lead_workspace_id_converted_deal_id_deal"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["membership.workspace_id", "membership.user_id"],
            name=op.f("fk_lead_workspace_id_owner_id_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_lead_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_lead")),
    )
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lead_workspace_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_lead_workspace_email",
            ["workspace_id", "email"],
            unique=False,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index("ix_lead_workspace_owner", ["workspace_id", "owner_id"], unique=False)
        batch_op.create_index(
            "ix_lead_workspace_phone",
            ["workspace_id", "phone_e164"],
            unique=False,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ix_lead_workspace_status", ["workspace_id", "status", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_lead_workspace_updated", ["workspace_id", "updated_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_lead_workspace_value", ["workspace_id", "value", "id"], unique=False
        )

    op.create_table(
        "activity",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("body", sa.String(length=100000), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("deal_id", sa.Uuid(), nullable=True),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "author_id"],
            ["membership.workspace_id", "membership.user_id"],
            name=op.f("fk_activity_workspace_id_author_id_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name=op.f("fk_activity_workspace_id_company_id_company"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contact.workspace_id", "contact.id"],
            name=op.f("fk_activity_workspace_id_contact_id_contact"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "deal_id"],
            ["deal.workspace_id", "deal.id"],
            name=op.f("fk_activity_workspace_id_deal_id_deal"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "lead_id"],
            ["lead.workspace_id", "lead.id"],
            name=op.f("fk_activity_workspace_id_lead_id_lead"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_activity_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_activity")),
    )
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_activity_company_timeline",
            ["workspace_id", "company_id", "occurred_at", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_activity_contact_timeline",
            ["workspace_id", "contact_id", "occurred_at", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_activity_deal_timeline",
            ["workspace_id", "deal_id", "occurred_at", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_activity_lead_timeline",
            ["workspace_id", "lead_id", "occurred_at", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_activity_workspace_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_activity_workspace_kind", ["workspace_id", "kind"], unique=False)
        batch_op.create_index(
            "ix_activity_workspace_occurred",
            ["workspace_id", "occurred_at", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "task",
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.String(length=10000), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("company_id", sa.Uuid(), nullable=True),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("deal_id", sa.Uuid(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "assignee_id"],
            ["membership.workspace_id", "membership.user_id"],
            name=op.f("fk_task_workspace_id_assignee_id_membership"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "company_id"],
            ["company.workspace_id", "company.id"],
            name=op.f("fk_task_workspace_id_company_id_company"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "contact_id"],
            ["contact.workspace_id", "contact.id"],
            name=op.f("fk_task_workspace_id_contact_id_contact"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "deal_id"],
            ["deal.workspace_id", "deal.id"],
            name=op.f("fk_task_workspace_id_deal_id_deal"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "lead_id"],
            ["lead.workspace_id", "lead.id"],
            name=op.f("fk_task_workspace_id_lead_id_lead"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_task_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_task")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index("ix_task_company", ["workspace_id", "company_id"], unique=False)
        batch_op.create_index("ix_task_contact", ["workspace_id", "contact_id"], unique=False)
        batch_op.create_index("ix_task_deal", ["workspace_id", "deal_id"], unique=False)
        batch_op.create_index("ix_task_lead", ["workspace_id", "lead_id"], unique=False)
        batch_op.create_index(
            "ix_task_workspace_assignee",
            ["workspace_id", "assignee_id", "status", "due_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_task_workspace_created", ["workspace_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_task_workspace_due", ["workspace_id", "due_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_task_workspace_status", ["workspace_id", "status", "due_at"], unique=False
        )

    # Search: trigram indexes keep substring search fast at a million rows.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_search_document_trgm ON search_document "
            "USING gin (content gin_trgm_ops)"
        )
        for table in ("contact", "company", "lead", "deal", "activity", "task"):
            op.execute(f"CREATE INDEX ix_{table}_tags ON {table} USING gin (tags jsonb_path_ops)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "content, content='search_document', content_rowid='rowid', tokenize='trigram')"
        )
        op.execute(
            "CREATE TRIGGER search_document_ai AFTER INSERT ON search_document BEGIN "
            "INSERT INTO search_fts(rowid, content) VALUES (new.rowid, new.content); END"
        )
        op.execute(
            "CREATE TRIGGER search_document_ad AFTER DELETE ON search_document BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, content) "
            "VALUES ('delete', old.rowid, old.content); END"
        )
        op.execute(
            "CREATE TRIGGER search_document_au AFTER UPDATE ON search_document BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, content) "
            "VALUES ('delete', old.rowid, old.content); "
            "INSERT INTO search_fts(rowid, content) VALUES (new.rowid, new.content); END"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_search_document_trgm")
    else:
        for trigger in ("search_document_ai", "search_document_ad", "search_document_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")

    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("ix_task_workspace_status")
        batch_op.drop_index("ix_task_workspace_due")
        batch_op.drop_index("ix_task_workspace_created")
        batch_op.drop_index("ix_task_workspace_assignee")
        batch_op.drop_index("ix_task_lead")
        batch_op.drop_index("ix_task_deal")
        batch_op.drop_index("ix_task_contact")
        batch_op.drop_index("ix_task_company")

    op.drop_table("task")
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_workspace_occurred")
        batch_op.drop_index("ix_activity_workspace_kind")
        batch_op.drop_index("ix_activity_workspace_created")
        batch_op.drop_index("ix_activity_lead_timeline")
        batch_op.drop_index("ix_activity_deal_timeline")
        batch_op.drop_index("ix_activity_contact_timeline")
        batch_op.drop_index("ix_activity_company_timeline")

    op.drop_table("activity")
    with op.batch_alter_table("lead", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_workspace_value")
        batch_op.drop_index("ix_lead_workspace_updated")
        batch_op.drop_index("ix_lead_workspace_status")
        batch_op.drop_index(
            "ix_lead_workspace_phone",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_lead_workspace_owner")
        batch_op.drop_index(
            "ix_lead_workspace_email",
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index("ix_lead_workspace_created")

    op.drop_table("lead")
    with op.batch_alter_table("deal_stage_change", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_stage_change_deal")

    op.drop_table("deal_stage_change")
    with op.batch_alter_table("deal", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_workspace_updated")
        batch_op.drop_index("ix_deal_workspace_status")
        batch_op.drop_index("ix_deal_workspace_stage")
        batch_op.drop_index("ix_deal_workspace_pipeline")
        batch_op.drop_index("ix_deal_workspace_owner")
        batch_op.drop_index("ix_deal_workspace_created")
        batch_op.drop_index("ix_deal_workspace_contact")
        batch_op.drop_index("ix_deal_workspace_company")
        batch_op.drop_index("ix_deal_workspace_close")
        batch_op.drop_index("ix_deal_workspace_amount")

    op.drop_table("deal")
    with op.batch_alter_table("contact_company", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_company_company")

    op.drop_table("contact_company")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_contact_live_email",
            sqlite_where=sa.text("deleted_at IS NULL AND email IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NULL AND email IS NOT NULL"),
        )
        batch_op.drop_index("ix_contact_workspace_updated")
        batch_op.drop_index("ix_contact_workspace_status")
        batch_op.drop_index("ix_contact_workspace_phone")
        batch_op.drop_index("ix_contact_workspace_owner")
        batch_op.drop_index("ix_contact_workspace_last_name")
        batch_op.drop_index("ix_contact_workspace_created")
        batch_op.drop_index("ix_contact_workspace_company")

    op.drop_table("contact")
    with op.batch_alter_table("stage", schema=None) as batch_op:
        batch_op.drop_index("ix_stage_pipeline_position")

    op.drop_table("stage")
    with op.batch_alter_table("company", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_company_live_domain",
            sqlite_where=sa.text("deleted_at IS NULL AND domain IS NOT NULL"),
            postgresql_where=sa.text("deleted_at IS NULL AND domain IS NOT NULL"),
        )
        batch_op.drop_index("ix_company_workspace_updated")
        batch_op.drop_index("ix_company_workspace_phone")
        batch_op.drop_index("ix_company_workspace_owner")
        batch_op.drop_index("ix_company_workspace_name")
        batch_op.drop_index("ix_company_workspace_industry")
        batch_op.drop_index("ix_company_workspace_created")

    op.drop_table("company")
    with op.batch_alter_table("pipeline", schema=None) as batch_op:
        batch_op.drop_index("ix_pipeline_workspace_position")

    op.drop_table("pipeline")
    op.drop_table("custom_field_definition")
    with op.batch_alter_table("search_document", schema=None) as batch_op:
        batch_op.drop_index("ix_search_document_rank")

    op.drop_table("search_document")
