"""stage jobs: the durable hand-offs between pipeline stages (server/work), taken by
workers under a lease

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stage_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('encounter_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('lease_until', sa.Float(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'encounter_id', name='uq_stage_jobs_kind')
    )
    with op.batch_alter_table('stage_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stage_jobs_encounter_id'), ['encounter_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_stage_jobs_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stage_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stage_jobs_state'))
        batch_op.drop_index(batch_op.f('ix_stage_jobs_encounter_id'))
    op.drop_table('stage_jobs')
