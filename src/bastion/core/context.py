"""What every request handler needs, built once per process by the app factory or the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from bastion.core.clock import Clock, SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=SystemClock)


def context(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx
