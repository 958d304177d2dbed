"""Migration 0012 keeps every order and hub event: the key column becomes ``subject``, hub events gain a unique
``external_id``; and down again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from bastion.core.db import alembic_config

AT = "2026-11-29 10:00:00.000000"


def test_events_survive_0012_up_and_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    config = alembic_config(url)
    command.upgrade(config, "0011")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO order_events (reference, kind, actor, data, at) "
                          "VALUES ('HUB-1', 'order.received', 'key:k', '{}', :at)"), {"at": AT})
        conn.execute(text("INSERT INTO hub_events (hub_reference, kind, actor, data, at) "
                          "VALUES ('TCO-1', 'order.issued', 'hub', '{}', :at)"), {"at": AT})
    command.upgrade(config, "0012")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT subject, kind FROM order_events")).all() == [("HUB-1", "order.received")]
        assert conn.execute(text("SELECT subject, external_id FROM hub_events")).all() == [("TCO-1", None)]
        conn.execute(text("INSERT INTO hub_events (subject, kind, actor, data, at, external_id) "
                          "VALUES ('TCO-1', 'order.sent', 'hub', '{}', :at, 'once')"), {"at": AT})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO hub_events (subject, kind, actor, data, at, external_id) "
                          "VALUES ('TCO-1', 'order.sent', 'hub', '{}', :at, 'once')"), {"at": AT})
    command.downgrade(config, "0011")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT reference FROM order_events")).all() == [("HUB-1",)]
        assert conn.execute(text("SELECT hub_reference FROM hub_events ORDER BY id")).all() == [("TCO-1",), ("TCO-1",)]
    engine.dispose()
