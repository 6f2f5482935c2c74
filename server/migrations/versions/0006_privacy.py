"""privacy: consent per encounter, legal hold, per-clinic consent and retention policy,
the deletions log

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 14:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clinics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_required', sa.Boolean(),
                                      server_default='1', nullable=False))
        batch_op.add_column(sa.Column('audio_retention_days', sa.Integer(),
                                      server_default='30', nullable=False))
        batch_op.add_column(sa.Column('transcript_retention_days', sa.Integer(),
                                      nullable=True))

    with op.batch_alter_table('encounters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_state', sa.String(length=16),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('consent_method', sa.String(length=16),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('consent_by', sa.String(length=200),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('consent_source', sa.String(length=16),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(),
                                      server_default='0', nullable=False))
        batch_op.add_column(sa.Column('legal_hold_reason', sa.Text(),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('audio_deleted_at', sa.DateTime(timezone=True),
                                      nullable=True))

    op.create_table('privacy_deletions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('clinic_id', sa.String(length=64), nullable=False),
    sa.Column('encounter_id', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('audio_frames', sa.Integer(), nullable=False),
    sa.Column('audio_bytes', sa.BigInteger(), nullable=False),
    sa.Column('transcript_segments', sa.Integer(), nullable=False),
    sa.Column('note_versions', sa.Integer(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('privacy_deletions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_privacy_deletions_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_deletions_clinic_id'), ['clinic_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_privacy_deletions_encounter_id'),
                              ['encounter_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('privacy_deletions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_privacy_deletions_encounter_id'))
        batch_op.drop_index(batch_op.f('ix_privacy_deletions_clinic_id'))
        batch_op.drop_index(batch_op.f('ix_privacy_deletions_at'))
    op.drop_table('privacy_deletions')

    # columns dropped in place (SQLite 3.35+ can): a batch recreate of clinics or
    # encounters would fail on the rows that refer to them
    for table, columns in (
            ('encounters', ('audio_deleted_at', 'legal_hold_reason', 'legal_hold',
                            'consent_source', 'consent_at', 'consent_by', 'consent_method',
                            'consent_state')),
            ('clinics', ('transcript_retention_days', 'audio_retention_days',
                         'consent_required'))):
        for column in columns:
            op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
