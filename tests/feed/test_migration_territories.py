"""Migration 0022 gives content already disabled in territories the territories its actions named; other content
gets none; and down again."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from bastion.core.db import alembic_config

AT = "2026-12-01 10:00:00.000000"


def _item(conn: object, content_id: str, restrictions: list[str]) -> None:
    conn.execute(text(  # type: ignore[attr-defined]
        "INSERT INTO content_items (content_id, account_id, uploader_age, account_country, content_type, text, url, "
        "file_name, signals, verdict, status, restrictions, category, views, shares, created_at, updated_at) "
        "VALUES (:c, 'a', 30, 'FR', 'text', '', '', '', '[]', 'review', 'restricted', :r, '', 0, 0, :at, :at)"),
        {"c": content_id, "r": json.dumps(restrictions), "at": AT})


def _applied(conn: object, content_id: str, actions: list[str], territories: list[str]) -> None:
    conn.execute(text(  # type: ignore[attr-defined]
        "INSERT INTO moderation_events (subject, kind, actor, data, at) VALUES (:s, 'content.actions_applied', "
        "'m', :d, :at)"),
        {"s": f"content:{content_id}", "at": AT,
         "d": json.dumps({"actions": actions, "territories": territories, "status": "restricted"})})


def test_0022_backfills_territories_from_the_actions_that_disabled_content(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/territories.db"
    config = alembic_config(url)
    command.upgrade(config, "0017")
    engine = create_engine(url)
    with engine.begin() as conn:
        _item(conn, "geo", ["disable_in_territories"])
        _applied(conn, "geo", ["disable_in_territories"], ["de"])
        _applied(conn, "geo", ["disable_in_territories"], ["AT"])
        _item(conn, "demoted", ["demote"])
        _applied(conn, "demoted", ["demote"], ["FR"])
    command.upgrade(config, "0022")
    with engine.begin() as conn:
        rows = dict(conn.execute(text("SELECT content_id, territories FROM content_items")).all())
    assert {k: json.loads(v) for k, v in rows.items()} == {"geo": ["AT", "DE"], "demoted": []}
    command.downgrade(config, "0017")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM content_items")).scalar() == 2
    engine.dispose()
