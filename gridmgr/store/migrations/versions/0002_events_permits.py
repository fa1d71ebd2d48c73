"""Registration events (append-only), residence permits, let rooms and rental violations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
APPEND_ONLY = "person_event is append-only: record a correction event instead"


def upgrade() -> None:
    op.create_table('person_event',
    sa.Column('id', PK, nullable=False),
    sa.Column('event_key', sa.String(length=80), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('person_id', PK, nullable=False),
    sa.Column('event_type', sa.String(length=12), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('arrived_at', sa.DateTime(), nullable=True),
    sa.Column('entered_at', sa.DateTime(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('house_id', PK, nullable=True),
    sa.Column('from_house_id', PK, nullable=True),
    sa.Column('residence_id', PK, nullable=True),
    sa.Column('closed_residence_id', PK, nullable=True),
    sa.Column('intended_stay_days', sa.Integer(), nullable=True),
    sa.Column('changes', sa.Text(), nullable=True),
    sa.Column('clerk', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['house_id'], ['house.id'], ),
    sa.ForeignKeyConstraint(['from_house_id'], ['house.id'], ),
    sa.ForeignKeyConstraint(['residence_id'], ['residence.id'], ),
    sa.ForeignKeyConstraint(['closed_residence_id'], ['residence.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_key'),
    sqlite_autoincrement=True
    )
    op.create_index('ix_person_event_person_id_id', 'person_event', ['person_id', 'id'],
                    unique=False)
    op.create_index(op.f('ix_person_event_residence_id'), 'person_event', ['residence_id'],
                    unique=False)
    op.create_table('residence_permit',
    sa.Column('id', PK, nullable=False),
    sa.Column('person_id', PK, nullable=False),
    sa.Column('permit_no', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('years', sa.Integer(), nullable=False),
    sa.Column('basis', sa.String(length=20), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('previous_id', PK, nullable=True),
    sa.Column('clerk', sa.String(length=100), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['previous_id'], ['residence_permit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('permit_no'),
    sa.UniqueConstraint('person_id', 'valid_from')
    )
    op.create_index(op.f('ix_residence_permit_person_id'), 'residence_permit', ['person_id'],
                    unique=False)
    op.create_index(op.f('ix_residence_permit_valid_until'), 'residence_permit',
                    ['valid_until'], unique=False)
    op.create_table('rental_room',
    sa.Column('id', PK, nullable=False),
    sa.Column('rental_id', PK, nullable=False),
    sa.Column('label', sa.String(length=40), nullable=True),
    sa.Column('room_type', sa.String(length=16), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=True),
    sa.Column('tenants', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['rental_id'], ['rental_record.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_rental_room_rental_id'), 'rental_room', ['rental_id'],
                    unique=False)
    op.create_table('rental_violation',
    sa.Column('id', PK, nullable=False),
    sa.Column('rental_id', PK, nullable=False),
    sa.Column('room_id', PK, nullable=True),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('found_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['rental_id'], ['rental_record.id'], ),
    sa.ForeignKeyConstraint(['room_id'], ['rental_room.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_rental_violation_rental_id'), 'rental_violation', ['rental_id'],
                    unique=False)
    # History is append-only in the store itself, not only by convention in the code.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION person_event_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{APPEND_ONLY}'; END $$")
        op.execute("CREATE TRIGGER person_event_append_only BEFORE UPDATE OR DELETE "
                   "ON person_event FOR EACH ROW EXECUTE FUNCTION person_event_append_only()")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER person_event_no_{action.lower()} BEFORE {action} "
                       f"ON person_event BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS person_event_append_only ON person_event")
        op.execute("DROP FUNCTION IF EXISTS person_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS person_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS person_event_no_delete")
    op.drop_index(op.f('ix_rental_violation_rental_id'), table_name='rental_violation')
    op.drop_table('rental_violation')
    op.drop_index(op.f('ix_rental_room_rental_id'), table_name='rental_room')
    op.drop_table('rental_room')
    op.drop_index(op.f('ix_residence_permit_valid_until'), table_name='residence_permit')
    op.drop_index(op.f('ix_residence_permit_person_id'), table_name='residence_permit')
    op.drop_table('residence_permit')
    op.drop_index(op.f('ix_person_event_residence_id'), table_name='person_event')
    op.drop_index('ix_person_event_person_id_id', table_name='person_event')
    op.drop_table('person_event')
