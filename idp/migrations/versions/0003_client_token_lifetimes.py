"""oauth_clients: token lifetimes per client (issue 16 point 9); NULL keeps the platform's

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 12:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('access_token_lifetime', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('id_token_lifetime', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('refresh_token_lifetime', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('refresh_token_lifetime')
        batch_op.drop_column('id_token_lifetime')
        batch_op.drop_column('access_token_lifetime')
