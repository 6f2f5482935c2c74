"""schedule consent: the patient's consent to recording as the clinic's schedule has it
(appointments.consent_method, appointments.consent_by)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_method', sa.String(length=16),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('consent_by', sa.String(length=200),
                                      server_default='', nullable=False))


def downgrade() -> None:
    # dropped in place (SQLite 3.35+ can), as 0006 does
    for column in ('consent_by', 'consent_method'):
        op.execute(f'ALTER TABLE appointments DROP COLUMN {column}')
