"""Initial schema: areas, plans, grids, houses, people, rentals, counts, tokens, audit.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 00:46:18.564613
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table('admin_area',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_code', sa.String(length=20), nullable=True),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_geospatial_index('idx_admin_area_geom', 'admin_area', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_admin_area_level'), 'admin_area', ['level'], unique=False)
    op.create_index(op.f('ix_admin_area_parent_code'), 'admin_area', ['parent_code'], unique=False)
    op.create_table('api_token',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('area_code', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('client_addr', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_table('boundary_plan',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('base_plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['base_plan_id'], ['boundary_plan.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_index(op.f('ix_boundary_plan_status'), 'boundary_plan', ['status'], unique=False)
    op.create_geospatial_table('business',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('workers', sa.Integer(), nullable=False),
    sa.Column('community_code', sa.String(length=20), nullable=True),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_id')
    )
    op.create_geospatial_index('idx_business_geom', 'business', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_business_community_code'), 'business', ['community_code'], unique=False)
    op.create_geospatial_table('house',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('house_code', sa.String(length=23), nullable=True),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('building', sa.Integer(), nullable=True),
    sa.Column('unit', sa.Integer(), nullable=True),
    sa.Column('room', sa.Integer(), nullable=True),
    sa.Column('area_m2', sa.Float(), nullable=True),
    sa.Column('use', sa.String(length=32), nullable=True),
    sa.Column('community_code', sa.String(length=20), nullable=True),
    sa.Column('outside_areas', sa.Boolean(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('house_code'),
    sa.UniqueConstraint('source_id'),
    sqlite_autoincrement=True
    )
    op.create_geospatial_index('idx_house_geom', 'house', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_house_community_code'), 'house', ['community_code'], unique=False)
    op.create_geospatial_table('grid',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('grid_id', sa.String(length=40), nullable=False),
    sa.Column('community_code', sa.String(length=20), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=True),
    sa.Column('police_area', sa.String(length=40), nullable=True),
    sa.Column('co_managers_assigned', sa.Integer(), nullable=False),
    sa.Column('area_km2', sa.Float(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['boundary_plan.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('plan_id', 'grid_id')
    )
    op.create_geospatial_index('idx_grid_geom', 'grid', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_grid_community_code'), 'grid', ['community_code'], unique=False)
    op.create_index(op.f('ix_grid_plan_id'), 'grid', ['plan_id'], unique=False)
    op.create_table('person',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('hukou_code', sa.String(length=12), nullable=False),
    sa.Column('floating', sa.Boolean(), nullable=False),
    sa.Column('person_class', sa.String(length=16), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=True),
    sa.Column('registered_house_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['registered_house_id'], ['house.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('id_number'),
    sa.UniqueConstraint('source_id'),
    sqlite_autoincrement=True
    )
    op.create_index(op.f('ix_person_floating'), 'person', ['floating'], unique=False)
    op.create_table('plan_adoption',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('adopted_at', sa.DateTime(), nullable=False),
    sa.Column('retired_at', sa.DateTime(), nullable=True),
    sa.Column('adopted_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['boundary_plan.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_plan_adoption_plan_id'), 'plan_adoption', ['plan_id'], unique=False)
    op.create_table('rental_record',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('house_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('landlord_id_number', sa.String(length=18), nullable=False),
    sa.Column('tenants', sa.Integer(), nullable=False),
    sa.Column('rental_class', sa.String(length=16), nullable=False),
    sa.Column('registered_on', sa.Date(), nullable=True),
    sa.Column('class_changed_on', sa.Date(), nullable=True),
    sa.Column('last_inspected_on', sa.Date(), nullable=True),
    sa.Column('next_due_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['house_id'], ['house.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('house_id')
    )
    op.create_index(op.f('ix_rental_record_next_due_on'), 'rental_record', ['next_due_on'], unique=False)
    op.create_table('business_grid',
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('business_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('grid_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('plan_id', 'business_id')
    )
    op.create_index('ix_business_grid_plan_grid', 'business_grid', ['plan_id', 'grid_pk'], unique=False)
    op.create_table('employment',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('business_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=True),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['business_id'], ['business.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_employment_business_id'), 'employment', ['business_id'], unique=False)
    op.create_index(op.f('ix_employment_person_id'), 'employment', ['person_id'], unique=False)
    op.create_table('grid_count',
    sa.Column('grid_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('houses', sa.Integer(), nullable=False),
    sa.Column('rental_houses', sa.Integer(), nullable=False),
    sa.Column('rental_key', sa.Integer(), nullable=False),
    sa.Column('rental_uneasy', sa.Integer(), nullable=False),
    sa.Column('rental_trusted', sa.Integer(), nullable=False),
    sa.Column('rental_registered', sa.Integer(), nullable=False),
    sa.Column('businesses', sa.Integer(), nullable=False),
    sa.Column('workers', sa.Integer(), nullable=False),
    sa.Column('big_employers', sa.Integer(), nullable=False),
    sa.Column('residents', sa.Integer(), nullable=False),
    sa.Column('floating_residents', sa.Integer(), nullable=False),
    sa.Column('floating_registered', sa.Integer(), nullable=False),
    sa.Column('registered_persons', sa.Integer(), nullable=False),
    sa.Column('consistent_persons', sa.Integer(), nullable=False),
    sa.Column('key_persons', sa.Integer(), nullable=False),
    sa.Column('uneasy_persons', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grid_pk'], ['grid.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['boundary_plan.id'], ),
    sa.PrimaryKeyConstraint('grid_pk')
    )
    op.create_index(op.f('ix_grid_count_plan_id'), 'grid_count', ['plan_id'], unique=False)
    op.create_table('house_grid',
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('house_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('grid_pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('plan_id', 'house_id')
    )
    op.create_index('ix_house_grid_plan_grid', 'house_grid', ['plan_id', 'grid_pk'], unique=False)
    op.create_table('inspection',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rental_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('inspected_on', sa.Date(), nullable=False),
    sa.Column('inspector', sa.String(length=100), nullable=False),
    sa.Column('outcome', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['rental_id'], ['rental_record.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_inspection_rental_id'), 'inspection', ['rental_id'], unique=False)
    op.create_table('residence',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('house_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('arrived_on', sa.Date(), nullable=False),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.Column('entered_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['house_id'], ['house.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_residence_house_id'), 'residence', ['house_id'], unique=False)
    op.create_index(op.f('ix_residence_person_id'), 'residence', ['person_id'], unique=False)
    op.create_index('ux_residence_current', 'residence', ['person_id'], unique=True, postgresql_where=sa.text('left_on IS NULL'), sqlite_where=sa.text('left_on IS NULL'))


def downgrade() -> None:
    op.drop_index('ux_residence_current', table_name='residence', postgresql_where=sa.text('left_on IS NULL'), sqlite_where=sa.text('left_on IS NULL'))
    op.drop_index(op.f('ix_residence_person_id'), table_name='residence')
    op.drop_index(op.f('ix_residence_house_id'), table_name='residence')
    op.drop_table('residence')
    op.drop_index(op.f('ix_inspection_rental_id'), table_name='inspection')
    op.drop_table('inspection')
    op.drop_index('ix_house_grid_plan_grid', table_name='house_grid')
    op.drop_table('house_grid')
    op.drop_index(op.f('ix_grid_count_plan_id'), table_name='grid_count')
    op.drop_table('grid_count')
    op.drop_index(op.f('ix_employment_person_id'), table_name='employment')
    op.drop_index(op.f('ix_employment_business_id'), table_name='employment')
    op.drop_table('employment')
    op.drop_index('ix_business_grid_plan_grid', table_name='business_grid')
    op.drop_table('business_grid')
    op.drop_index(op.f('ix_rental_record_next_due_on'), table_name='rental_record')
    op.drop_table('rental_record')
    op.drop_index(op.f('ix_plan_adoption_plan_id'), table_name='plan_adoption')
    op.drop_table('plan_adoption')
    op.drop_index(op.f('ix_person_floating'), table_name='person')
    op.drop_table('person')
    op.drop_index(op.f('ix_grid_plan_id'), table_name='grid')
    op.drop_index(op.f('ix_grid_community_code'), table_name='grid')
    op.drop_geospatial_index('idx_grid_geom', table_name='grid', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('grid')
    op.drop_index(op.f('ix_house_community_code'), table_name='house')
    op.drop_geospatial_index('idx_house_geom', table_name='house', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('house')
    op.drop_index(op.f('ix_business_community_code'), table_name='business')
    op.drop_geospatial_index('idx_business_geom', table_name='business', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('business')
    op.drop_index(op.f('ix_boundary_plan_status'), table_name='boundary_plan')
    op.drop_table('boundary_plan')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('api_token')
    op.drop_index(op.f('ix_admin_area_parent_code'), table_name='admin_area')
    op.drop_index(op.f('ix_admin_area_level'), table_name='admin_area')
    op.drop_geospatial_index('idx_admin_area_geom', table_name='admin_area', postgresql_using='gist', column_name='geom')
    op.drop_geospatial_table('admin_area')
