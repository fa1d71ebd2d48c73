"""Boundary-plan edit history: operations and the grids before and after each.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('plan_op',
    sa.Column('id', PK, nullable=False),
    sa.Column('plan_id', PK, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('op', sa.String(length=16), nullable=False),
    sa.Column('args', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('undone_at', sa.DateTime(), nullable=True),
    sa.Column('undone_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['boundary_plan.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_id', 'seq')
    )
    op.create_index(op.f('ix_plan_op_plan_id'), 'plan_op', ['plan_id'], unique=False)
    op.create_geospatial_table('plan_op_grid',
    sa.Column('id', PK, nullable=False),
    sa.Column('op_id', PK, nullable=False),
    sa.Column('side', sa.String(length=6), nullable=False),
    sa.Column('grid_id', sa.String(length=40), nullable=False),
    sa.Column('community_code', sa.String(length=20), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=True),
    sa.Column('police_area', sa.String(length=40), nullable=True),
    sa.Column('co_managers_assigned', sa.Integer(), nullable=False),
    sa.Column('area_km2', sa.Float(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['op_id'], ['plan_op.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_plan_op_grid_op_id'), 'plan_op_grid', ['op_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_plan_op_grid_op_id'), table_name='plan_op_grid')
    op.drop_geospatial_table('plan_op_grid')
    op.drop_index(op.f('ix_plan_op_plan_id'), table_name='plan_op')
    op.drop_table('plan_op')
