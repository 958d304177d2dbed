"""Alembic environment: the URL comes from the caller (``bastion.core.db.migrate``) or BASTION_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from bastion.core.config import Settings
from bastion.core.db import make_engine
from bastion.models import metadata

config = context.config
url = config.attributes.get("database_url") or Settings.from_env().database_url


def run() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
