"""Writes known events, at known times, the way moderation, orders and reporting write them: the scenario the
transparency tests check figure by figure, and the load ``bench/transparency.py`` counts.

Rows are gathered and written with one multi-row insert per table (``flush``), so a hundred thousand uploads take
seconds. Each payload is the domain's own pydantic model, so a payload that changes shape breaks the scenario too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert
from sqlalchemy.orm import Session

from bastion.moderation import events as mod
from bastion.moderation.models import ContentItem, ModerationEvent
from bastion.orders import events as orders
from bastion.orders.models import OrderEvent
from bastion.orders.wire import ActionTaken, InabilityReason
from bastion.reporting import events as reports
from bastion.reporting.models import ReportEvent

POLICY = "policy:default"


class Scenario:
    """Known events; times are given by the caller. Methods return nothing: figures are checked afterwards."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.events: dict[type[Any], list[dict[str, Any]]] = {ModerationEvent: [], OrderEvent: [], ReportEvent: []}
        self._case = 0
        self._appeal = 0

    def _event(self, table: type[Any], subject: str, kind: str, actor: str, at: dt.datetime, data: BaseModel) -> None:
        self.events[table].append({"subject": subject, "kind": kind, "actor": actor, "at": at,
                                   "data": data.model_dump(mode="json"), "external_id": None})

    def _mod(self, content_id: str, kind: mod.EventKind, actor: str, at: dt.datetime, data: BaseModel) -> None:
        self._event(ModerationEvent, f"content:{content_id}", kind.value, actor, at, data)

    # --- moderation ---------------------------------------------------------------------------------------------

    def upload(self, content_id: str, at: dt.datetime, *, country: str = "DE", content_type: str = "video",
               language: str = "de", verdict: str = "allow", matched: bool = False, category: str = "") -> None:
        self.items.append({
            "content_id": content_id, "account_id": f"acct-{content_id}", "uploader_age": 30.0,
            "account_country": country, "content_type": content_type, "text": "", "url": "", "file_name": "",
            "signals": [], "verdict": verdict, "status": "published", "restrictions": [], "category": category,
            "views": 0, "shares": 0, "created_at": at, "updated_at": at})
        self._mod(content_id, mod.EventKind.SUBMITTED, "platform", at, mod.Submitted(
            account_id=f"acct-{content_id}", content_type=content_type, signals=1, language=language))
        matches = [mod.MatchRecord(bank="known", entry_id=1, signal_type="pdq", category=category, distance=0)] \
            if matched else []
        self._mod(content_id, mod.EventKind.VERDICT, POLICY, at, mod.VerdictGiven(verdict=verdict, matches=matches))

    def block_at_upload(self, content_id: str, at: dt.datetime, *, category: str, matched: bool = True,
                        **upload: Any) -> None:
        """Refused at upload by the policy (a hash match, or a classifier when not ``matched``)."""
        self.upload(content_id, at, verdict="block", matched=matched, category=category, **upload)
        self._mod(content_id, mod.EventKind.ACTIONS_APPLIED, POLICY, at, mod.ActionsApplied(
            actions=["remove"], status="blocked", category=category))

    def notice(self, content_id: str, at: dt.datetime, *, category: str, trusted: bool = False) -> None:
        self._mod(content_id, mod.EventKind.NOTICE, "platform", at, mod.NoticeReceived(
            category=category, explanation="", trusted_flagger=trusted, notifier="someone"))

    def review(self, content_id: str, opened: dt.datetime, decided: dt.datetime, *, reason: str, category: str,
               actions: Sequence[str] = ("remove",), violation: bool = True, territories: Sequence[str] = ()) -> None:
        """A case opened (``upload``, ``notice``, ``views``) and decided by a moderator, with its actions."""
        self._case += 1
        self._mod(content_id, mod.EventKind.CASE_OPENED, "system", opened,
                  mod.CaseOpened(case_id=self._case, queue="default", reason=reason))
        self._mod(content_id, mod.EventKind.DECISION, "moderator-1", decided, mod.Decided(
            case_id=self._case, violation=violation, actions=list(actions), category=category, reason=reason))
        if violation and actions:
            self._mod(content_id, mod.EventKind.ACTIONS_APPLIED, "moderator-1", decided, mod.ActionsApplied(
                actions=list(actions), territories=list(territories), status="removed", category=category))

    def appeal(self, content_id: str, filed: dt.datetime, decided: dt.datetime, *, upheld: bool) -> None:
        self._case += 1
        self._appeal += 1
        self._mod(content_id, mod.EventKind.APPEAL_FILED, f"acct-{content_id}", filed,
                  mod.AppealFiled(appeal_id=self._appeal, case_id=self._case, statement_puid="p"))
        self._mod(content_id, mod.EventKind.CASE_OPENED, "system", filed,
                  mod.CaseOpened(case_id=self._case, queue="default", reason="appeal"))
        self._mod(content_id, mod.EventKind.DECISION, "moderator-2", decided,
                  mod.Decided(case_id=self._case, violation=upheld, reason="appeal"))
        self._mod(content_id, mod.EventKind.APPEAL_DECIDED, "moderator-2", decided,
                  mod.AppealDecided(appeal_id=self._appeal, outcome="upheld" if upheld else "reversed"))
        if not upheld:
            self._mod(content_id, mod.EventKind.REINSTATED, "moderator-2", decided,
                      mod.Reinstated(appeal_id=self._appeal))

    def suspend(self, account_id: str, at: dt.datetime, *, permanent: bool = False) -> None:
        self._event(ModerationEvent, f"account:{account_id}", mod.EventKind.SUSPENDED.value, "moderator-1", at,
                    mod.Suspended(action="suspend_permanently" if permanent else "suspend_temporarily"))

    # --- orders and reports -------------------------------------------------------------------------------------

    def order(self, reference: str, received: dt.datetime, *, member_state: str, urls: int,
              executed_after: dt.timedelta | None = None, unable: bool = False) -> None:
        self._event(OrderEvent, reference, orders.OrderEventKind.RECEIVED.value, "authority", received,
                    orders.Received(sender="authority", issuing_member_state=member_state, urls=urls, nonce="n",
                                    authority_signature="none"))
        if unable:
            self._event(OrderEvent, reference, orders.OrderEventKind.UNABLE.value, "moderator-1", received,
                        orders.Unable(reason=InabilityReason.INSUFFICIENT_INFORMATION, explanation=""))
        if executed_after is not None:
            seconds = executed_after.total_seconds()
            self._event(OrderEvent, reference, orders.OrderEventKind.EXECUTED.value, "system",
                        received + executed_after, orders.Executed(
                            action=ActionTaken.REMOVED, content=[orders.ActedOn(content_id="c", status="removed",
                                                                                acted=True)],
                            seconds_since_receipt=seconds, within_hour=seconds <= 3600,
                            category="terrorist_content"))

    def report(self, report_id: str, at: dt.datetime, *, centres: Sequence[str]) -> None:
        self._event(ReportEvent, report_id, reports.ReportEventKind.SENT.value, "child-safety-1", at,
                    reports.Sent(centres=list(centres), fingerprint="f"))

    def repeat(self, report_id: str, content_id: str, at: dt.datetime, *, after_sending: bool = False) -> None:
        """A reported file uploaded again: recorded with the report, a duplicate avoided."""
        self._event(ReportEvent, report_id, reports.ReportEventKind.REPEAT_RECORDED.value, "system:drafting", at,
                    reports.RepeatRecorded(content_id=content_id, repeat_of="first", after_sending=after_sending))

    def flush(self, session: Session) -> None:
        """Write what was gathered (content first, then each log in the order given) and start afresh."""
        if self.items:
            session.execute(insert(ContentItem), self.items)
        for table, rows in self.events.items():
            if rows:
                session.execute(insert(table), rows)
        self.items = []
        self.events = {table: [] for table in self.events}
