"""The shell's own tables, the same in every app's database: created by `migrations.upgrade()`."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from shared.outbox import OutboxColumns

shell_metadata = MetaData()


class ShellModel(DeclarativeBase):
    metadata = shell_metadata


class OutboxMail(OutboxColumns, ShellModel):
    """An app's queued mail (SAM alerts, Catalogue moderation mails)."""

    __tablename__ = "mail_outbox"
