"""The hub's tables: registered authorities and providers, orders as carried, and the hub's event log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime
from bastion.core.events import EventLog


class Authority(Base):
    """A competent authority of a Member State, its API token's actor and its signing keys."""

    __tablename__ = "hub_authorities"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    member_state: Mapped[str] = mapped_column(String(2), index=True)
    authority_type: Mapped[str] = mapped_column(String(24))
    #: ``Principal.actor`` of the token this authority uses; its orders must come with it.
    token_actor: Mapped[str] = mapped_column(String(200), unique=True)
    public_keys: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Provider(Base):
    """A hosting service provider: its contact point, languages, Member State of establishment and keys."""

    __tablename__ = "hub_providers"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact_point_url: Mapped[str] = mapped_column(String(2000))
    member_state: Mapped[str] = mapped_column(String(2))
    languages: Mapped[list[str]] = mapped_column(JSON)
    public_keys: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class HubOrder(Base):
    """An order or referral as the hub carries it; timestamps are the written record Art. 3(5) asks for."""

    __tablename__ = "hub_orders"
    __table_args__ = (UniqueConstraint("authority_id", "authority_reference", name="uq_hub_orders_authority_ref"),)

    #: The hub's reference, unique, sent to the provider as the order reference.
    hub_reference: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    authority_id: Mapped[int] = mapped_column(BigInteger)
    authority_reference: Mapped[str] = mapped_column(String(120))
    provider_id: Mapped[int] = mapped_column(BigInteger, index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(24))
    #: The earlier order for the same content this one was linked to (and not sent).
    linked_to: Mapped[str | None] = mapped_column(String(120), nullable=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: What the contact point says it received (its clock), from the acknowledgement.
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    action_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Art. 4: the host Member State that may scrutinise, and until when.
    scrutiny_member_state: Mapped[str] = mapped_column(String(2), default="")
    scrutiny_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Annex I section E: the issuing authority's own Ed25519 signature on an order issued by API (its key id, its
    #: ``Bastion-Ed25519`` header and the exact body it signed), forwarded to the provider. Empty for an order issued
    #: in the console, which the authority's login stands behind instead.
    authority_key_id: Mapped[str] = mapped_column(String(16), default="", server_default="")
    authority_signature: Mapped[str] = mapped_column(String(400), default="", server_default="")
    authority_signed_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class HubOrderUrl(Base):
    """One row per URL of an order, so a later order for the same content of the same provider finds it."""

    __tablename__ = "hub_order_urls"
    __table_args__ = (Index("ix_hub_order_urls_provider_url", "provider_id", "url"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hub_reference: Mapped[str] = mapped_column(String(120))
    provider_id: Mapped[int] = mapped_column(BigInteger)
    url: Mapped[str] = mapped_column(String(2000))


class HubEvent(EventLog, Base):
    """Every step the hub takes, never updated (``hub/events.py``). ``subject`` is the order's hub reference."""

    __tablename__ = "hub_events"
    __table_args__ = (Index("ix_hub_events_subject", "subject", "id"),)


class AuthorityUser(Base):
    """A console user of role ``authority`` at the hub, and the competent authority they act for.

    The console authenticates a person by their login; this row says for which authority (and so which Member
    State) that person may issue and follow orders. One authority has any number of users; a user acts for one.
    """

    __tablename__ = "hub_authority_users"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    authority_id: Mapped[int] = mapped_column(BigInteger, index=True)
    linked_by: Mapped[str] = mapped_column(String(200))
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
