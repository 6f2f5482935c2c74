"""patients: the clinic's schedule, each review item's patient, clinic time zone;
the signer's attestation and an amendment's reason

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 09:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('appointments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('clinic_id', sa.String(length=64), nullable=False),
    sa.Column('room_id', sa.String(length=64), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_min', sa.Integer(), server_default='20', nullable=False),
    sa.Column('patient_name', sa.String(length=200), nullable=False),
    sa.Column('patient_dob', sa.String(length=10), nullable=False),
    sa.Column('patient_mrn', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('clinic_id', 'room_id', 'starts_at', 'patient_mrn',
                        name='uq_appointments_slot')
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointments_clinic_id'), ['clinic_id'],
                              unique=False)
        batch_op.create_index('ix_appointments_room_start', ['room_id', 'starts_at'],
                              unique=False)

    with op.batch_alter_table('clinics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64),
                                      server_default='UTC', nullable=False))

    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient_name', sa.String(length=200),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('patient_dob', sa.String(length=10),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('patient_mrn', sa.String(length=64),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('appointment_at', sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('visit_reason', sa.Text(),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('patient_source', sa.String(length=32),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('attestation', sa.Text(),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('signed_by_name', sa.String(length=200),
                                      server_default='', nullable=False))

    with op.batch_alter_table('note_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('note_versions', schema=None) as batch_op:
        batch_op.drop_column('reason')

    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.drop_column('signed_by_name')
        batch_op.drop_column('attestation')
        batch_op.drop_column('patient_source')
        batch_op.drop_column('visit_reason')
        batch_op.drop_column('appointment_at')
        batch_op.drop_column('patient_mrn')
        batch_op.drop_column('patient_dob')
        batch_op.drop_column('patient_name')

    with op.batch_alter_table('clinics', schema=None) as batch_op:
        batch_op.drop_column('timezone')

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index('ix_appointments_room_start')
        batch_op.drop_index(batch_op.f('ix_appointments_clinic_id'))

    op.drop_table('appointments')
