"""collections: cases, agents, contacts, actions and refused attempts, promises to pay,
restructurings, legal escalations

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(20, 2)
AT = sa.DateTime(timezone=True)


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.Integer(), primary_key=True)


def _fk(name: str, table: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Integer(), sa.ForeignKey(f"{table}.id"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "collection_agents",
        _id(),
        sa.Column("name", sa.String(80), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "collection_cases",
        _id(),
        _fk("loan_id", "loans"),
        sa.Column("queue", sa.String(24), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _fk("agent_id", "collection_agents", nullable=True),
        sa.Column("assigned_on", sa.Date(), nullable=True),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("close_reason", sa.String(16), nullable=True),
        sa.Column("dpd_at_open", sa.Integer(), nullable=False),
        sa.Column("broken_promises", sa.Integer(), nullable=False),
        sa.Column("do_not_contact", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_collection_cases_loan_id", "collection_cases", ["loan_id"])
    op.create_index("ix_collection_cases_agent_id", "collection_cases", ["agent_id"])
    op.create_index("ix_collection_cases_queue_status", "collection_cases", ["queue", "status"])
    op.create_index(  # one case per loan that is not closed
        "uq_collection_cases_open_loan",
        "collection_cases",
        ["loan_id"],
        unique=True,
        postgresql_where=sa.text("status <> 'closed'"),
        sqlite_where=sa.text("status <> 'closed'"),
    )
    op.create_table(
        "collection_contacts",
        _id(),
        _fk("loan_id", "loans"),
        sa.Column("relation", sa.String(24), nullable=False),
        sa.Column("relationship", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("contact_point", sa.String(64), nullable=False),
        sa.Column("value_enc", sa.Text(), nullable=False),
        sa.Column("masked", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("consented_at", AT, nullable=True),
        sa.Column("added_on", sa.Date(), nullable=False),
        sa.UniqueConstraint(
            "loan_id", "contact_point", name="uq_collection_contacts_loan_id_contact_point"
        ),
    )
    op.create_index("ix_collection_contacts_loan_id", "collection_contacts", ["loan_id"])
    op.create_index(
        "ix_collection_contacts_contact_point", "collection_contacts", ["contact_point"]
    )
    op.create_table(
        "collection_actions",
        _id(),
        _fk("case_id", "collection_cases"),
        _fk("loan_id", "loans"),
        _fk("agent_id", "collection_agents"),
        _fk("contact_id", "collection_contacts", nullable=True),
        sa.Column("contact_point", sa.String(64), nullable=False),
        sa.Column("relation", sa.String(24), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("at", AT, nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
    )
    op.create_index("ix_collection_actions_case_id", "collection_actions", ["case_id"])
    op.create_index("ix_collection_actions_loan_id", "collection_actions", ["loan_id"])
    op.create_index("ix_collection_actions_point_at", "collection_actions", ["contact_point", "at"])
    op.create_table(
        "collection_refusals",
        _id(),
        _fk("case_id", "collection_cases"),
        _fk("agent_id", "collection_agents", nullable=True),
        _fk("contact_id", "collection_contacts", nullable=True),
        sa.Column("contact_point", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("at", AT, nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("field", sa.String(40), nullable=True),
        sa.Column("detail", sa.String(300), nullable=False),
    )
    op.create_index("ix_collection_refusals_case_id", "collection_refusals", ["case_id"])
    op.create_table(
        "collection_promises",
        _id(),
        _fk("case_id", "collection_cases"),
        _fk("loan_id", "loans"),
        _fk("agent_id", "collection_agents", nullable=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("made_on", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("paid", MONEY, nullable=False),
        sa.Column("resolved_on", sa.Date(), nullable=True),
    )
    op.create_index("ix_collection_promises_case_id", "collection_promises", ["case_id"])
    op.create_index("ix_collection_promises_loan_id", "collection_promises", ["loan_id"])
    op.create_index("ix_collection_promises_status", "collection_promises", ["status"])
    op.create_table(
        "collection_restructurings",
        _id(),
        _fk("loan_id", "loans"),
        _fk("case_id", "collection_cases", nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("extension_months", sa.Integer(), nullable=False),
        sa.Column("new_installment", MONEY, nullable=True),
        sa.Column("offered_on", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=True),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("outstanding_principal", MONEY, nullable=False),
        sa.Column("arrears", MONEY, nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("previous_terms", sa.JSON(), nullable=True),
    )
    op.create_index(
        "ix_collection_restructurings_loan_id", "collection_restructurings", ["loan_id"]
    )
    op.create_table(
        "collection_legal",
        _id(),
        _fk("case_id", "collection_cases"),
        _fk("loan_id", "loans"),
        _fk("agent_id", "collection_agents", nullable=True),
        sa.Column("escalated_on", sa.Date(), nullable=False),
        sa.Column("dpd", sa.Integer(), nullable=False),
        sa.Column("exposure", MONEY, nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
    )
    op.create_index("ix_collection_legal_case_id", "collection_legal", ["case_id"])
    op.create_index("ix_collection_legal_loan_id", "collection_legal", ["loan_id"])


def downgrade() -> None:
    for table in (
        "collection_legal",
        "collection_restructurings",
        "collection_promises",
        "collection_refusals",
        "collection_actions",
        "collection_contacts",
        "collection_cases",
        "collection_agents",
    ):
        op.drop_table(table)
