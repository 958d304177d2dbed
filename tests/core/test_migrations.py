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


def test_0031_turns_bank_digests_into_bytes_and_back(tmp_path: object) -> None:
    """Entries banked before 0031 keep their keys: the hex digest becomes its bytes (which the import and the
    exchanges look entries up by), and going down gives the hex again."""
    import hashlib

    from alembic import command
    from sqlalchemy import text

    from bastion.core.db import alembic_config

    url = f"sqlite:///{tmp_path}/digests.db"
    config = alembic_config(url)
    command.upgrade(config, "0025")
    values = [f"{i:064x}" for i in range(3)]
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO banks (id, name, description, enabled, restricted, dihedral, thresholds, "
                          "created_at, created_by) VALUES (1, 'B', '', 1, 0, 0, '{}', '2026-01-01 00:00:00', 'x')"))
        for i, value in enumerate(values, 1):
            conn.execute(text("INSERT INTO bank_entries (id, bank_id, signal_type, value, value_digest, category, "
                              "source, note, enabled, added_by, added_at) VALUES (:id, 1, 'pdq', :value, :digest, "
                              "'', '', '', 1, 'x', '2026-01-01 00:00:00')"),
                         {"id": i, "value": value, "digest": hashlib.sha256(value.encode()).hexdigest()})
    command.upgrade(config, "0031")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT value, value_digest FROM bank_entries ORDER BY id")).all()
    assert [(v, bytes(d)) for v, d in stored] == [(v, hashlib.sha256(v.encode()).digest()) for v in values]
    command.downgrade(config, "0025")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT value, value_digest FROM bank_entries ORDER BY id")).all()
    assert stored == [(v, hashlib.sha256(v.encode()).hexdigest()) for v in values]
    engine.dispose()


def test_0035_starts_the_grooming_watch_after_the_events_already_written(tmp_path: object) -> None:
    """Requests looked at the grooming of every event written before 0035: the watch starts after them, so it never
    reopens, from old attempts, a case a specialist dismissed."""
    from alembic import command
    from sqlalchemy import text

    from bastion.core.db import alembic_config

    url = f"sqlite:///{tmp_path}/marks.db"
    config = alembic_config(url)
    command.upgrade(config, "0033")
    engine = create_engine(url)
    with engine.begin() as conn:
        for i in (1, 2, 7):
            conn.execute(text("INSERT INTO minor_events (id, subject, kind, actor, data, at) VALUES (:id, "
                              "'account:a', 'interaction.denied', 'x', '{}', '2026-01-01 00:00:00')"), {"id": i})
    command.upgrade(config, "0035")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT log, last_id FROM minor_marks")).all() == [("grooming", 7)]
    engine.dispose()


def test_0037_keeps_the_ages_in_one_b_tree_on_sqlite_with_every_row(tmp_path: object) -> None:
    """Each interaction check reads its accounts' ages by id: WITHOUT ROWID, one B-tree search each, not two. The
    rows recorded before survive the rebuild, both ways."""
    from alembic import command
    from sqlalchemy import text

    from bastion.core.db import alembic_config

    url = f"sqlite:///{tmp_path}/ages.db"
    config = alembic_config(url)
    command.upgrade(config, "0036")
    engine = create_engine(url)
    row = ("acct1", "estimated", 15.5, "facial-estimation", 0.8, "13_15", "2026-12-01 10:00:00.000000",
           "2026-12-01 10:00:01.000000")

    def stored() -> tuple[str, list[tuple[object, ...]]]:
        with engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'minor_ages'")).scalar_one()
            return sql, [tuple(r) for r in conn.execute(text("SELECT * FROM minor_ages"))]

    with engine.begin() as conn:
        conn.execute(text("INSERT INTO minor_ages VALUES (:a, :b, :y, :m, :c, :band, :o, :r)"),
                     dict(zip(("a", "b", "y", "m", "c", "band", "o", "r"), row, strict=True)))
    assert "WITHOUT ROWID" not in stored()[0]
    command.upgrade(config, "0037")
    sql, rows = stored()
    assert "WITHOUT ROWID" in sql and rows == [row]
    command.downgrade(config, "0036")
    sql, rows = stored()
    assert "WITHOUT ROWID" not in sql and rows == [row]
    engine.dispose()


def test_sqlite_tables_are_stored_as_the_models_declare(tmp_path: object) -> None:
    """Alembic's comparison leaves out how SQLite stores a table: a model declared WITHOUT ROWID (the ages, read by
    id on every interaction check) must be so after the migrations, and no other table."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path}/stored.db"
    migrate(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        created = dict(conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all())
    engine.dispose()
    for name, table in metadata.tables.items():
        declared = table.dialect_options["sqlite"]["with_rowid"] is not False
        assert ("WITHOUT ROWID" not in created[name].upper()) == declared, name
    assert "WITHOUT ROWID" in created["minor_ages"].upper()
