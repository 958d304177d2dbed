"""Every domain's tables, imported in one place so Alembic and the tests see the whole schema."""

from bastion.centre.models import CentreMaterial, CentreReport
from bastion.classifiers.models import CorpusText, TrainedModel
from bastion.core.audit.models import AuditEntry
from bastion.core.auth.models import ApiToken, ConsoleSession, LoginFailures, User
from bastion.core.db import Base
from bastion.core.outbox.models import OutboxMessage
from bastion.designations.models import DesignatedEntity, DesignationChange, DesignationEvent
from bastion.exchanges.models import Exchange, ExchangeCursor
from bastion.factchecks.models import FactcheckEvent, FactcheckPartner, FactcheckRating, FactcheckRequest
from bastion.feed.audit.models import FeedAuditRun
from bastion.feed.models import Crisis, CrisisEvent
from bastion.hma.models import HmaContent
from bastion.hub.models import Authority, AuthorityUser, HubEvent, HubOrder, HubOrderUrl, Provider
from bastion.matching.models import Bank, BankChange, BankEntry, EntryOrigin
from bastion.minors.models import AccountSettings, AgeRecord, FamilyLink, MinorEvent, MinorsCase, MinorsMark
from bastion.moderation.models import (
    Account,
    Appeal,
    ContentItem,
    MediaPreview,
    ModerationEvent,
    StatementOfReasons,
)
from bastion.orders.models import OrderEvent, PreservedContent, ReceivedOrder, SeenNonce, TrustedKey
from bastion.reporting.models import ChildSafetyReport, ReportDelivery, ReportedFile
from bastion.review.models import Case
from bastion.transparency.models import Mark, Rollup
from bastion.transparency.sor_models import SorEvent, SorSubmission

metadata = Base.metadata

__all__ = ["Account", "ApiToken", "Appeal", "AuditEntry", "Bank", "BankChange", "BankEntry", "Case", "ConsoleSession",
           "ContentItem", "MediaPreview", "ModerationEvent", "OutboxMessage", "StatementOfReasons", "User", "metadata"]
__all__ += ["CorpusText", "TrainedModel"]
__all__ += ["Authority", "HubEvent", "HubOrder", "HubOrderUrl", "OrderEvent", "Provider", "ReceivedOrder", "SeenNonce",
            "TrustedKey"]
__all__ += ["PreservedContent"]
__all__ += ["CentreMaterial", "CentreReport", "ChildSafetyReport", "ReportDelivery", "ReportedFile"]
__all__ += ["AuthorityUser"]
__all__ += ["LoginFailures"]
__all__ += ["HmaContent"]
__all__ += ["AccountSettings", "AgeRecord", "FamilyLink", "MinorEvent", "MinorsCase", "MinorsMark"]
__all__ += ["Mark", "Rollup"]
__all__ += ["FactcheckEvent", "FactcheckPartner", "FactcheckRating", "FactcheckRequest"]
__all__ += ["DesignatedEntity", "DesignationChange", "DesignationEvent"]
__all__ += ["EntryOrigin", "Exchange", "ExchangeCursor"]
__all__ += ["Crisis", "CrisisEvent"]
__all__ += ["FeedAuditRun"]
__all__ += ["SorEvent", "SorSubmission"]
