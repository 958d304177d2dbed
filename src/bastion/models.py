"""Every domain's tables, imported in one place so Alembic and the tests see the whole schema."""

from bastion.core.audit.models import AuditEntry
from bastion.core.auth.models import ApiToken, ConsoleSession, User
from bastion.core.db import Base
from bastion.core.outbox.models import OutboxMessage
from bastion.matching.models import Bank, BankChange, BankEntry
from bastion.moderation.models import Account, Appeal, ContentItem, ModerationEvent, StatementOfReasons
from bastion.review.models import Case

metadata = Base.metadata

__all__ = ["Account", "ApiToken", "Appeal", "AuditEntry", "Bank", "BankChange", "BankEntry", "Case", "ConsoleSession",
           "ContentItem", "ModerationEvent", "OutboxMessage", "StatementOfReasons", "User", "metadata"]
