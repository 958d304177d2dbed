"""The migrations build exactly the schema the models declare, on SQLite and on PostgreSQL, and undo cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from bastion.core.db import Database, migrate
from bastion.models import metadata


def test_models_and_migrations_agree(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
    finally:
        db.dispose()
    assert diff == [], "models and migrations differ; write a migration:\n" + "\n".join(map(str, diff))


def test_migrations_run_down_and_up_again(tmp_path: object) -> None:
    from alembic import command

    from bastion.core.db import alembic_config

    url = f"sqlite:///{tmp_path}/roundtrip.db"
    migrate(url)
    config = alembic_config(url)
    command.downgrade(config, "base")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert set(conn.dialect.get_table_names(conn)) <= {"alembic_version"}
    engine.dispose()
    migrate(url)
