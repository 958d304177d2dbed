"""The curation loop: a human-confirmed violation's media goes into a bank, so future copies are caught at upload."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bastion.core.auth.roles import CHILD_SAFETY_ROLES
from bastion.core.auth.services import Principal
from bastion.hashing import registry
from bastion.hashing.interfaces import HashResult
from bastion.matching import services as bank_services
from bastion.matching.interfaces import BankError, DuplicateEntry, InvalidEntry
from bastion.matching.models import Bank
from bastion.matching.services import NewEntry
from bastion.moderation import events
from bastion.moderation.interfaces import CurationRefused, InvalidDecision, NotAllowed
from bastion.moderation.kernel import Moderation, content_subject, get_item, log, restricted_content
from bastion.moderation.queries import confirmed_violation


@dataclass(frozen=True)
class Curated:
    bank: str
    added: list[int]
    #: Signals not added, and why (already in the bank, too weak to match, ...).
    skipped: list[str]


def curate(mod: Moderation, content_id: str, bank_name: str, *, actor: Principal) -> Curated:
    """Add a human-confirmed violation's media to a bank, in one step: future copies are caught at upload.

    One transaction: the entries, their change-log rows and the ``content.curated`` event, or nothing. Suspected
    child sexual abuse material goes only into restricted banks, and only by child-safety roles.
    """
    with mod.db.write() as session:
        item = get_item(session, content_id)
        decision = confirmed_violation(session, content_id)
        if decision is None:
            raise InvalidDecision("only media a moderator confirmed as a violation can be added to a bank")
        try:  # a restricted bank the actor may not see is refused as one that does not exist
            bank = bank_services.visible_bank(session, bank_name, actor)
        except BankError as exc:
            raise CurationRefused(str(exc), exc.status) from None
        if restricted_content(mod, session, item):
            if actor.role not in CHILD_SAFETY_ROLES:
                raise NotAllowed("this content is restricted to child-safety specialists")
            if not bank.restricted:
                raise CurationRefused("suspected child sexual abuse material goes only into restricted banks", 422)
        category = decision.category or item.category
        added: list[int] = []
        skipped: list[str] = []
        for signal in item.signals:
            outcome = _bank_signal(mod, session, bank, signal, category, content_id, actor)
            if isinstance(outcome, int):
                added.append(outcome)
            else:
                skipped.append(outcome)
        if not added and not skipped:
            raise InvalidDecision("the content has no signal a bank can hold")
        log(mod, session, content_subject(content_id), events.EventKind.CURATED, actor.actor,
            events.Curated(bank=bank_name, entry_ids=added, skipped=skipped))
        return Curated(bank_name, added, skipped)


def _bank_signal(mod: Moderation, session: Session, bank: Bank, signal: dict[str, object], category: str,
                 content_id: str, actor: Principal) -> int | str:
    """The new entry's id, or why the signal was not added. A bank closed to the actor stops the whole step."""
    signal_type, value = str(signal.get("signal_type", "")), str(signal.get("value", ""))
    quality = signal.get("quality")
    result = HashResult(signal_type, value, quality if isinstance(quality, int) else None)
    try:
        if not registry.get(signal_type).matchable(result):
            return f"{signal_type}: too weak to match (quality {quality})"
        entry = NewEntry.parse(signal_type, value, category, source=f"content:{content_id}")
        return bank_services.add_entry_in(mod.db, session, bank, entry, actor=actor, clock=mod.clock).id
    except (InvalidEntry, registry.UnknownSignalType) as exc:
        return f"{signal_type}: {exc}"
    except DuplicateEntry:
        return f"{signal_type}: already in {bank.name}"
    except BankError as exc:
        raise CurationRefused(str(exc), exc.status) from None
