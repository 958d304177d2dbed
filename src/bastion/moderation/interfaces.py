"""The moderation domain's errors: each is a ``DomainError`` that carries how to answer it."""

from __future__ import annotations

from typing import Any

from bastion.core.errors import DomainError
from bastion.moderation.policy import Verdict


class ModerationError(DomainError):
    status = 400
    title = "Bad request"


class ContentNotFound(ModerationError):
    status = 404
    title = "Content not found"


class StatementNotFound(ModerationError):
    status = 404
    title = "Statement not found"


class AccountNotFound(ModerationError):
    status = 404
    title = "Account not found"


class InvalidDecision(ModerationError):
    status = 422
    title = "Invalid decision"


class NotAllowed(ModerationError):
    status = 403
    title = "Forbidden"


class PreviewUnreadable(ModerationError):
    status = 500
    title = "Preview unreadable"


class SubmissionConflict(ModerationError):
    """The content_id was submitted before with a different request. The new request was judged and recorded on
    the content (and acted on, if the policy says so), but its answer is this refusal, never the old verdict."""

    status = 409
    title = "Conflict"

    def __init__(self, message: str, verdict: Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict

    def problem_extra(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value}  # the platform learns what the new request's verdict was


class CurationRefused(ModerationError):
    """The bank is missing, or closed to this reviewer; carries the bank error's status."""

    title = "Curation refused"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
