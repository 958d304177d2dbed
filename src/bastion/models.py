"""Every domain's tables, imported in one place so Alembic and the tests see the whole schema."""

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.models import ApiToken, ConsoleSession, User
from bastion.core.db import Base
from bastion.matching.models import Bank, BankChange, BankEntry

metadata = Base.metadata

__all__ = ["ApiToken", "AuditEntry", "Bank", "BankChange", "BankEntry", "ConsoleSession", "User", "metadata"]
