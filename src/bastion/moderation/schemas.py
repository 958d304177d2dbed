"""The moderation API's answers, as pydantic models: ``/openapi.json`` documents every field a client reads."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ContentAnswer(BaseModel):
    """The verdict on an upload, before publication."""

    content_id: str
    verdict: str = Field(description="allow, review or block")
    status: str = Field(description="published, held, blocked, removed or restricted")
    reasons: list[str] = Field(description="what was found and how; never a bank, rule, distance or score")
    case_id: int | None = Field(description="the review case opened, if any")
    statement_puid: str | None = Field(description="the statement of reasons, when the upload was refused")
    signals: list[dict[str, Any]] = Field(description="the signals the upload was hashed to")
    replay: bool = Field(description="true when this content_id was submitted before and the stored answer is given")


class ContentEvent(BaseModel):
    id: int
    kind: str
    actor: str
    at: str
    data: dict[str, Any] = Field(description="the event's payload (the platform sees the outcome fields only)")


class ContentRecord(BaseModel):
    """An upload's status and its moderation history."""

    content_id: str
    account_id: str
    status: str
    verdict: str
    restrictions: list[str]
    category: str
    territories: list[str] = Field(default_factory=list, description="where it is disabled (ISO 3166-1 alpha-2), "
                                   "while disable_in_territories is among the restrictions")
    views: int
    events: list[ContentEvent]


class NoticeAnswer(BaseModel):
    content_id: str
    case_id: int | None = Field(description="the case opened or raised; null for a notice recorded before")


class MetricsAnswer(BaseModel):
    content_id: str
    thresholds_crossed: list[int]


class AppealAnswer(BaseModel):
    appeal_id: int
    case_id: int
    state: str


class StatementAnswer(BaseModel):
    """A statement of reasons in the DSA Transparency Database's fields (optional ones only when they apply)."""

    model_config = ConfigDict(extra="allow")

    puid: str
    decision_ground: str
    category: str
    content_type: list[str]
    content_date: str
    application_date: str
    decision_facts: str
    source_type: str
    automated_detection: str
    automated_decision: str
    content_type_other: str | None = None
    decision_visibility: list[str] | None = None
    decision_account: str | None = None
    category_specification: list[str] | None = None
    illegal_content_legal_ground: str | None = None
    illegal_content_explanation: str | None = None
    incompatible_content_ground: str | None = None
    incompatible_content_explanation: str | None = None
    territorial_scope: list[str] | None = None


class CaseAnswer(BaseModel):
    id: int
    content_id: str
    queue: str
    category: str
    reason: str
    severity: int
    reach: int
    state: str
    opened_at: str
    due_at: str
    seconds_left: int
    claimed_by: str | None
    claim_expires_at: str | None
    escalated: bool
    escalation_note: str | None


class QueueAnswer(BaseModel):
    name: str
    open: int
    claimed: int
    escalated: int
    sla_minutes: int
    oldest_opened_at: str | None
    next_due_at: str | None


class QueuesAnswer(BaseModel):
    queues: list[QueueAnswer]


class DecisionAnswer(BaseModel):
    case_id: int
    content_id: str
    status: str = Field(description="the content's status after the decision")
    statement_puid: str | None = Field(default=None, description="the statement of reasons issued, if any")
    appeal: str | None = Field(default=None, description="an appeal case's outcome: upheld, partly_reversed or "
                                                         "reversed")
    lifted: list[str] | None = Field(default=None, description="an appeal partly reversed: the actions lifted")
    standing: list[str] | None = Field(default=None, description="an appeal partly reversed: the actions that stand "
                                                                 "(restated in a new statement of reasons)")


class CurationAnswer(BaseModel):
    content_id: str
    bank: str
    added: list[int]
    skipped: list[str]


class RuleAnswer(BaseModel):
    name: str
    category: str
    verdict: str
    mode: str
    severity: int


class ShadowAnswer(BaseModel):
    rule: str
    would_be: str
    held: int
    reviewed: int
    agreed: int
    agreement: float | None


class PolicyAnswer(BaseModel):
    policy: str
    rules: list[RuleAnswer]
    shadow: list[ShadowAnswer]


#: ``POST /v1/content`` reads its multipart form itself (one file, bounded fields): this documents it.
CONTENT_FORM: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object",
    "required": ["content_id", "account_id", "account_age", "account_country", "content_type"],
    "properties": {
        "content_id": {"type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,200}$"},
        "account_id": {"type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,200}$"},
        "account_age": {"type": "number", "minimum": 0, "maximum": 150, "description": "the uploader's age, years"},
        "account_country": {"type": "string", "description": "ISO 3166-1 alpha-2 code"},
        "content_type": {"type": "string", "enum": ["image", "video", "text"]},
        "text": {"type": "string", "maxLength": 100000},
        "url": {"type": "string", "maxLength": 4000, "description": "an http(s) URL where it is posted"},
        "file_name": {"type": "string", "maxLength": 300},
        "language": {"type": "string", "pattern": "^[A-Za-z]{2,3}$",
                     "description": "ISO 639 code of the content's language (counted in transparency reports)"},
        "live": {"type": "string", "enum": ["true", "false"], "default": "false",
                 "description": "a livestream (or its recording): a crisis may keep those of some countries out of "
                                "feeds"},
        "media": {"type": "string", "format": "binary", "description": "the file (unless text)"},
    }}}}}}
