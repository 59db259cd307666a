"""collateral: catalog, quotes, pledges, margin calls, devices

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PG_TRIGGERS = """
CREATE OR REPLACE FUNCTION collateral_events_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'collateral_events is append-only' USING ERRCODE = '23514';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER collateral_events_append_only BEFORE UPDATE OR DELETE ON collateral_events
  FOR EACH ROW EXECUTE FUNCTION collateral_events_append_only();
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER collateral_events_no_{name} BEFORE {name.upper()} ON collateral_events
        BEGIN SELECT RAISE(ABORT, 'collateral_events is append-only'); END"""
    for name in ("update", "delete")
]


def upgrade() -> None:
    op.create_table(
        "device_models",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("brand", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=80), nullable=False),
        sa.Column("release_date", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("successor_key", sa.String(length=80), nullable=True),
        sa.Column("successor_release_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_device_models")),
    )
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_models_brand"), ["brand"], unique=False)

    op.create_table(
        "collateral_terms",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("haircut", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("max_ltv", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("warning_ltv", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("margin_call_ltv", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("liquidation_ltv", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("margin_call_days", sa.Integer(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("lock_policy", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "0 < max_ltv AND max_ltv <= warning_ltv AND warning_ltv < margin_call_ltv"
            " AND margin_call_ltv < liquidation_ltv",
            name=op.f("ck_collateral_terms_ltv_order"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_collateral_terms_product_id_products")
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_collateral_terms")),
    )
    op.create_table(
        "device_tacs",
        sa.Column("tac", sa.String(length=8), nullable=False),
        sa.Column("model_key", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_key"],
            ["device_models.key"],
            name=op.f("fk_device_tacs_model_key_device_models"),
        ),
        sa.PrimaryKeyConstraint("tac", name=op.f("pk_device_tacs")),
    )
    with op.batch_alter_table("device_tacs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_tacs_model_key"), ["model_key"], unique=False)

    op.create_table(
        "device_variants",
        sa.Column("model_key", sa.String(length=80), nullable=False),
        sa.Column("storage_gb", sa.Integer(), nullable=False),
        sa.Column("launch_price", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_key"],
            ["device_models.key"],
            name=op.f("fk_device_variants_model_key_device_models"),
        ),
        sa.PrimaryKeyConstraint("model_key", "storage_gb", name=op.f("pk_device_variants")),
    )
    op.create_table(
        "price_quotes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_key", sa.String(length=80), nullable=False),
        sa.Column("storage_gb", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("price", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("quoted_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_key"],
            ["device_models.key"],
            name=op.f("fk_price_quotes_model_key_device_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_quotes")),
        sa.UniqueConstraint(
            "model_key", "storage_gb", "grade", "quoted_on", "source", name="uq_price_quotes_key"
        ),
    )
    with op.batch_alter_table("price_quotes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_price_quotes_lookup",
            ["model_key", "storage_gb", "grade", "quoted_on"],
            unique=False,
        )

    op.create_table(
        "pledges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("imei", sa.String(length=15), nullable=False),
        sa.Column("model_key", sa.String(length=80), nullable=False),
        sa.Column("storage_gb", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=16), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=False),
        sa.Column("carrier_locked", sa.Boolean(), nullable=False),
        sa.Column("value_factor", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("custody_mode", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=120), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pledged_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("booking_value", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("lending_value", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("current_value", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("outstanding", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("ltv", sa.Numeric(precision=12, scale=6), nullable=True),
        sa.Column("ltv_status", sa.String(length=16), nullable=False),
        sa.Column("shortfall", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("marked_on", sa.Date(), nullable=True),
        sa.Column("sale_proceeds", sa.Numeric(precision=20, scale=2), nullable=True),
        sa.Column("surplus", sa.Numeric(precision=20, scale=2), nullable=True),
        sa.CheckConstraint(
            "custody_mode IN ('pawn', 'device_lock')", name=op.f("ck_pledges_custody_mode")
        ),
        sa.CheckConstraint(
            "ltv_status IN ('ok', 'warning', 'margin_call', 'liquidation')",
            name=op.f("ck_pledges_ltv_status"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'released', 'forfeited', 'liquidated')",
            name=op.f("ck_pledges_status"),
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_pledges_loan_id_loans")),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_pledges_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["model_key"], ["device_models.key"], name=op.f("fk_pledges_model_key_device_models")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pledges")),
        postgresql_with={"fillfactor": 50},
    )
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pledges_loan_id"), ["loan_id"], unique=False)
        batch_op.create_index(
            "uq_pledges_live_imei",
            ["imei"],
            unique=True,
            sqlite_where=sa.text("status IN ('active', 'forfeited')"),
            postgresql_where=sa.text("status IN ('active', 'forfeited')"),
        )

    op.create_table(
        "collateral_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pledge_id"], ["pledges.id"], name=op.f("fk_collateral_events_pledge_id_pledges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collateral_events")),
    )
    with op.batch_alter_table("collateral_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_collateral_events_pledge_id"), ["pledge_id"], unique=False
        )

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "token_expires_at",
            sa.DateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("public_key", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reported_state", sa.String(length=16), nullable=False),
        sa.Column("imeis", sa.JSON(), nullable=False),
        sa.Column("sim_mcc_mnc", sa.String(length=8), nullable=True),
        sa.Column("sim_changed", sa.Boolean(), nullable=False),
        sa.Column("rooted", sa.Boolean(), nullable=False),
        sa.Column("tampered", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("offline_lock_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pledge_id"], ["pledges.id"], name=op.f("fk_devices_pledge_id_pledges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("pledge_id", name=op.f("uq_devices_pledge_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_devices_token_hash")),
    )
    op.create_table(
        "margin_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pledge_id", sa.Integer(), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("ltv", sa.Numeric(precision=12, scale=6), nullable=False),
        sa.Column("shortfall", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("prepayment_to_cure", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pledge_id"], ["pledges.id"], name=op.f("fk_margin_calls_pledge_id_pledges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_margin_calls")),
    )
    with op.batch_alter_table("margin_calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_margin_calls_pledge_id"), ["pledge_id"], unique=False)
        batch_op.create_index(
            "uq_margin_calls_open",
            ["pledge_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )

    op.create_table(
        "device_check_ins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_check_ins_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_check_ins")),
        sa.UniqueConstraint("device_id", "nonce", name="uq_device_check_ins_nonce"),
    )
    with op.batch_alter_table("device_check_ins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_check_ins_device_id"), ["device_id"], unique=False
        )

    op.create_table(
        "device_commands",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=120), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_commands_device_id_devices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_commands")),
        sa.UniqueConstraint("nonce", name=op.f("uq_device_commands_nonce")),
    )
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_commands_device_id"), ["device_id"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGERS)
    else:
        for ddl in SQLITE_TRIGGERS:
            op.execute(ddl)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS collateral_events_append_only ON collateral_events")
        op.execute("DROP FUNCTION IF EXISTS collateral_events_append_only()")
    else:
        for name in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS collateral_events_no_{name}")
    with op.batch_alter_table("device_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_commands_device_id"))

    op.drop_table("device_commands")
    with op.batch_alter_table("device_check_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_check_ins_device_id"))

    op.drop_table("device_check_ins")
    with op.batch_alter_table("margin_calls", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_margin_calls_open",
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )
        batch_op.drop_index(batch_op.f("ix_margin_calls_pledge_id"))

    op.drop_table("margin_calls")
    op.drop_table("devices")
    with op.batch_alter_table("collateral_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_collateral_events_pledge_id"))

    op.drop_table("collateral_events")
    with op.batch_alter_table("pledges", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_pledges_live_imei",
            sqlite_where=sa.text("status IN ('active', 'forfeited')"),
            postgresql_where=sa.text("status IN ('active', 'forfeited')"),
        )
        batch_op.drop_index(batch_op.f("ix_pledges_loan_id"))

    op.drop_table("pledges")
    with op.batch_alter_table("price_quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_price_quotes_lookup")

    op.drop_table("price_quotes")
    op.drop_table("device_variants")
    with op.batch_alter_table("device_tacs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_tacs_model_key"))

    op.drop_table("device_tacs")
    op.drop_table("collateral_terms")
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_models_brand"))

    op.drop_table("device_models")
