"""Code and identifier columns compare byte by byte (collation "C") on PostgreSQL.

Building the btrees of a 6.7 M-house load under the database's default collation costs a
strcoll call per comparison (PostgreSQL uses abbreviated keys only under "C"); equality is
unchanged, and SQLite already compares these columns as BINARY, so it has nothing to do.
On a populated PostgreSQL store the indexes on these columns are rebuilt (no table rewrite).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# table → (column, varchar length); every code column compared with another is listed, so
# no comparison mixes the "C" collation with the database default.
COLUMNS = {
    'admin_area': [('code', 20), ('parent_code', 20)],
    'grid': [('community_code', 20)],
    'house': [('source_id', 64), ('house_code', 23), ('community_code', 20)],
    'person': [('source_id', 64), ('id_number', 18), ('hukou_code', 12)],
    'business': [('source_id', 64), ('community_code', 20)],
    'rental_record': [('landlord_id_number', 18)],
    'api_token': [('area_code', 20)],
    'plan_op_grid': [('community_code', 20)],
}


def _alter(collation: str) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, columns in COLUMNS.items():
        changes = ', '.join(f'ALTER COLUMN {c} TYPE varchar({n}) COLLATE {collation}'
                            for c, n in columns)
        op.execute(f'ALTER TABLE {table} {changes}')


def upgrade() -> None:
    _alter('"C"')


def downgrade() -> None:
    _alter('"default"')
