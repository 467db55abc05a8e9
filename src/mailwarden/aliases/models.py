from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailwarden.db.base import Base
from mailwarden.db.types import EmailAddress, UTCDateTime, utcnow


class AliasTarget(Base):
    """One target of an alias: an alias with three targets is three rows sharing `address`.

    Postfix's `virtual_alias_maps` asks by `address` (the leading column of the unique index);
    a catch-all is stored with the address `@domain`.
    """

    __tablename__ = "aliases"
    __table_args__ = (
        UniqueConstraint("address", "target"),
        Index("ix_aliases_domain_id_address", "domain_id", "address"),
        Index("ix_aliases_target", "target"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="RESTRICT"))
    address: Mapped[str] = mapped_column(EmailAddress())
    target: Mapped[str] = mapped_column(EmailAddress())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
