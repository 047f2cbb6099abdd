"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Frozen DDL: once released, never edit this file; write a new revision.
Use the table prefix and schema from the migration context (never literal
"ss_" names), and keep every dialect working (SQLite: op.batch_alter_table;
MySQL/MariaDB: DDL is not transactional, order steps so that a failure
half-way can be finished by rerunning).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def _settings() -> tuple[str, str | None]:
    opts = op.get_context().opts
    return opts["sessionstore_prefix"], opts.get("sessionstore_schema")


def upgrade() -> None:
    prefix, schema = _settings()
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    prefix, schema = _settings()
    ${downgrades if downgrades else "pass"}
