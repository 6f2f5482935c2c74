"""clinic note settings: the template and style of its drafts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 22:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clinics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note_template', sa.String(length=64),
                                      server_default='soap', nullable=False))
        batch_op.add_column(sa.Column('note_style', sa.String(length=16),
                                      server_default='concise', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('clinics', schema=None) as batch_op:
        batch_op.drop_column('note_style')
        batch_op.drop_column('note_template')
