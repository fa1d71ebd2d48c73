"""Each current residence carries its person's packed count flags, kept by triggers.

The full recount (counts.recompute) then reads one column of residence and no person rows:
on PostgreSQL sending 5.67 M person rows was the largest part of the check. Bulk loads
write the flags themselves; the triggers fill them for any other insert (the trigger's
WHEN clause skips rows that come with flags, so a COPY keeps its multi-row inserts) and
follow every change of a person's floating, registration or class to the current
residence. A populated PostgreSQL store is compacted once the migration has committed
(VACUUM FULL, by schema.upgrade), since the UPDATE leaves every residence row twice on disk
and no rewrite inside the migration's own transaction can drop the old versions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gridmgr.store.schema import AFTER_COMMIT  # run by schema.upgrade once this commits

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _flags(p: str, house: str) -> str:
    # A frozen copy of counts.person_flags_sql at this revision.
    return (f"(CASE WHEN {p}.floating THEN 1 ELSE 0 END) "
            f"+ (CASE WHEN {p}.registered_on IS NULL THEN 0 ELSE 2 END) "
            f"+ (CASE WHEN {p}.registered_house_id = {house} THEN 4 ELSE 0 END) "
            f"+ 8 * (CASE {p}.person_class WHEN 'key' THEN 1 WHEN 'uneasy' THEN 2 ELSE 0 END)")


PERSON_COLUMNS = "floating, registered_on, registered_house_id, person_class"
PERSON_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}"
                             for c in PERSON_COLUMNS.split(", "))
RESIDENCE_MOVED = ("NEW.left_on IS NULL AND (OLD.left_on IS NOT NULL "
                   "OR OLD.house_id IS DISTINCT FROM NEW.house_id "
                   "OR OLD.person_id IS DISTINCT FROM NEW.person_id)")
FROM_PERSON = (f"(SELECT {_flags('p', 'residence.house_id')} FROM person p "
               "WHERE p.id = residence.person_id)")


def _postgresql() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION residence_person_flags_fill() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"UPDATE residence SET person_flags = {FROM_PERSON} WHERE residence.id = NEW.id; "
        "RETURN NULL; END $$")
    op.execute("CREATE TRIGGER residence_person_flags_insert AFTER INSERT ON residence "
               "FOR EACH ROW WHEN (NEW.person_flags IS NULL) "
               "EXECUTE FUNCTION residence_person_flags_fill()")
    op.execute("CREATE TRIGGER residence_person_flags_move AFTER UPDATE OF house_id, "
               f"person_id, left_on ON residence FOR EACH ROW WHEN ({RESIDENCE_MOVED}) "
               "EXECUTE FUNCTION residence_person_flags_fill()")
    op.execute(
        "CREATE OR REPLACE FUNCTION person_flags_follow() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"UPDATE residence SET person_flags = {_flags('NEW', 'residence.house_id')} "
        "WHERE residence.person_id = NEW.id AND residence.left_on IS NULL; "
        "RETURN NULL; END $$")
    op.execute(f"CREATE TRIGGER person_flags_follow AFTER UPDATE OF {PERSON_COLUMNS} ON "
               f"person FOR EACH ROW WHEN ({PERSON_CHANGED}) "
               "EXECUTE FUNCTION person_flags_follow()")


def _sqlite() -> None:
    fill = f"UPDATE residence SET person_flags = {FROM_PERSON} WHERE id = NEW.id;"
    op.execute("CREATE TRIGGER residence_person_flags_insert AFTER INSERT ON residence "
               f"WHEN NEW.person_flags IS NULL BEGIN {fill} END")
    op.execute("CREATE TRIGGER residence_person_flags_move AFTER UPDATE OF house_id, "
               f"person_id, left_on ON residence WHEN {RESIDENCE_MOVED} BEGIN {fill} END")
    op.execute(f"CREATE TRIGGER person_flags_follow AFTER UPDATE OF {PERSON_COLUMNS} ON "
               f"person WHEN {PERSON_CHANGED} BEGIN "
               f"UPDATE residence SET person_flags = {_flags('NEW', 'residence.house_id')} "
               "WHERE person_id = NEW.id AND left_on IS NULL; END")


def upgrade() -> None:
    op.add_column('residence', sa.Column('person_flags', sa.SmallInteger(), nullable=True))
    op.execute(f"UPDATE residence SET person_flags = {FROM_PERSON} WHERE left_on IS NULL")
    if op.get_bind().dialect.name == 'postgresql':
        filled = op.get_bind().execute(sa.text(
            "SELECT EXISTS (SELECT 1 FROM residence)")).scalar_one()
        if filled:  # the UPDATE left every row twice; only a rewrite after commit frees it
            op.get_context().config.attributes.setdefault(AFTER_COMMIT, []).append(
                'VACUUM (FULL, ANALYZE) residence')
        _postgresql()
    else:
        _sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS person_flags_follow ON person")
        op.execute("DROP TRIGGER IF EXISTS residence_person_flags_move ON residence")
        op.execute("DROP TRIGGER IF EXISTS residence_person_flags_insert ON residence")
        op.execute("DROP FUNCTION IF EXISTS person_flags_follow()")
        op.execute("DROP FUNCTION IF EXISTS residence_person_flags_fill()")
    else:
        for name in ("person_flags_follow", "residence_person_flags_move",
                     "residence_person_flags_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    with op.batch_alter_table('residence') as batch:
        batch.drop_column('person_flags')
