"""transcripts: final segments and per-encounter transcription state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('transcript_segments',
    sa.Column('encounter_id', sa.String(length=36), nullable=False),
    sa.Column('segment_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('start_s', sa.Float(), nullable=False),
    sa.Column('end_s', sa.Float(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('speaker', sa.String(length=16), nullable=False),
    sa.Column('words', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('encounter_id', 'segment_id')
    )
    op.create_table('transcriptions',
    sa.Column('encounter_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('engine', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('audio_s', sa.Float(), nullable=False),
    sa.Column('backlog_s', sa.Float(), nullable=False),
    sa.Column('max_backlog_s', sa.Float(), nullable=False),
    sa.Column('behind_events', sa.Integer(), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('engine_s', sa.Float(), nullable=False),
    sa.Column('end_to_transcript_ms', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['encounter_id'], ['encounters.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('encounter_id')
    )


def downgrade() -> None:
    op.drop_table('transcriptions')
    op.drop_table('transcript_segments')
