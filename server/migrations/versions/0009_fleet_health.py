"""fleet: each device's latest status report and health state, a bounded history of
reports, and alerts (server/fleet)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('device_health',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('state_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('offline_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('device_reports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('device_reports', schema=None) as batch_op:
        batch_op.create_index('ix_device_reports_device_at', ['device_id', 'received_at'],
                              unique=False)

    op.create_table('fleet_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('clinic_id', sa.String(length=64), nullable=False),
    sa.Column('room_id', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('open_key', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_key')
    )
    with op.batch_alter_table('fleet_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fleet_alerts_clinic_id'), ['clinic_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_fleet_alerts_device_id'), ['device_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_fleet_alerts_resolved_at'), ['resolved_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('fleet_alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fleet_alerts_resolved_at'))
        batch_op.drop_index(batch_op.f('ix_fleet_alerts_device_id'))
        batch_op.drop_index(batch_op.f('ix_fleet_alerts_clinic_id'))
    op.drop_table('fleet_alerts')
    with op.batch_alter_table('device_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_device_reports_device_at')
    op.drop_table('device_reports')
    op.drop_table('device_health')
