"""Intake: an upload's verdict before publication (hash, match, classify, judge), idempotent on its content id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from bastion.classifiers.interfaces import Content
from bastion.classifiers.services import score as classify
from bastion.core.auth.services import Principal
from bastion.core.events import NewEvent, payload, record_many
from bastion.core.idempotency import fingerprint
from bastion.hashing.exact import Sha256Signal, digest_file
from bastion.hashing.interfaces import HashResult
from bastion.hashing.services import FileSignals, hash_text, signal_json
from bastion.matching.matcher import Match, Query, queries_for
from bastion.moderation import statements
from bastion.moderation.actions import Outcome, apply
from bastion.moderation.events import (
    Change,
    ContentStatus,
    EventKind,
    MatchRecord,
    PlatformMessage,
    Resubmitted,
    ShadowVerdict,
    Submitted,
    VerdictGiven,
    change_for_actions,
    content_restrictions,
    next_status,
)
from bastion.moderation.interfaces import SubmissionConflict
from bastion.moderation.kernel import Moderation, content_subject, get_item, log, notify, open_case
from bastion.moderation.models import ContentItem, MediaPreview, ModerationEvent, StatementOfReasons
from bastion.moderation.policy import (
    Action,
    Category,
    ContentType,
    Decision,
    Facts,
    MatchFact,
    Verdict,
    evaluate,
)
from bastion.moderation.previews import PREVIEW_PX, Preview, make_preview
from bastion.review.models import Case, CaseReason


@dataclass(frozen=True)
class Submission:
    content_id: str
    account_id: str
    uploader_age: float
    account_country: str
    content_type: ContentType
    text: str = ""
    url: str = ""
    #: The name the user uploaded the file under (optional; child-safety reports carry it).
    file_name: str = ""
    #: The content's language as the platform gives it (ISO 639-1, lower case; "" unknown): transparency counts it.
    language: str = ""
    #: A livestream (or its recording) rather than an upload: a crisis may keep those of some countries out of feeds.
    live: bool = False


@dataclass(frozen=True)
class IntakeResult:
    content_id: str
    verdict: Verdict
    status: ContentStatus
    reasons: list[str]
    case_id: int | None = None
    statement_puid: str | None = None
    #: True when this content_id had been submitted before and the stored answer is returned.
    replay: bool = False
    signals: list[dict[str, object]] = field(default_factory=list)


def submit(mod: Moderation, sub: Submission, media: FileSignals | None, *, actor: Principal,
           media_path: Path | None = None) -> IntakeResult:
    """Judge an upload before it is published. Idempotent on ``content_id`` for the same request only.

    The same content_id with the same request (fields and media bytes) returns the stored answer. With a different
    request it is ``SubmissionConflict``: the new media is still hashed, matched, judged and recorded on the content
    (a banked file cannot slip in under an id that was clean). ``media_path`` (the spooled upload) lets the upload
    keep a sealed preview for its reviewers: held or blocked uploads always, published ones too
    (``keep_published_previews``), since a notice or their reach may bring them back for review. An image's
    preview is made from ``media.picture``: hash it with ``picture_px=picture_px(mod)``.
    """
    request = request_fingerprint(sub, media)
    signals = (media.signals if media else []) + hash_text(" ".join(t for t in (sub.text, sub.url) if t))
    queries = (queries_for(media) if media else []) + [Query(s) for s in signals if not media or s not in media.signals]
    try:
        matches = mod.matcher.match(queries)
    except Exception:
        stored = _stored_result(mod, sub.content_id)
        if stored is not None and stored[1] == request:
            return stored[0]  # a retry whose answer was lost gets it even while matching fails
        raise
    # media matching a restricted bank (known child sexual abuse material) is never sent to a classifier, which
    # may be a service outside Bastion; its text still is
    sendable = media is not None and not any(m.restricted for m in matches)
    scoring = classify(mod.classifiers, Content(sub.text, media_path if sendable else None,
                                                media.kind if media and sendable else None))
    facts = Facts(content_type=sub.content_type, user_age_years=sub.uploader_age,
                  account_country=sub.account_country, matches=[MatchFact.from_match(m) for m in matches],
                  scores=scoring.scores)
    decision = evaluate(mod.intake_policy, facts)
    notes = [str(f) for f in scoring.failures]
    preview = None
    if media is not None and media_path is not None and mod.sealer is not None \
            and (decision.verdict is not Verdict.ALLOW or mod.keep_published_previews):
        preview = make_preview(media)
    try:  # no read first: the content row's insert is the check (a new content_id, nearly always)
        return _record_submission(mod, sub, signals, decision, actor, matches=matches, preview=preview,
                                  notes=notes, request=request)
    except IntegrityError:  # submitted before, or concurrently and the other request won: its answer decides
        stored = _stored_result(mod, sub.content_id)
        if stored is None:  # another constraint failed: not a repeat
            raise
        if stored[1] == request:
            return stored[0]
    _record_resubmission(mod, sub, signals, decision, actor, matches=matches, notes=notes, request=request,
                         preview=preview)
    raise SubmissionConflict(
        f"content_id {sub.content_id!r} was submitted before with a different request (media, account or another "
        f"field); the new request was judged ({decision.verdict.value}) and recorded on that content: send new "
        "content under a new content_id", decision.verdict)


def picture_px(mod: Moderation) -> int:
    """The picture to ask hashing for (``hash_path(picture_px=...)``): a preview's size, or none when no preview
    can be kept (no key to seal it with)."""
    return PREVIEW_PX if mod.sealer is not None else 0


def request_fingerprint(sub: Submission, media: FileSignals | None) -> str:
    """What makes two submissions the same request: every field, and the media's bytes (by their SHA-256)."""
    return fingerprint({
        "content_id": sub.content_id, "account_id": sub.account_id, "uploader_age": float(sub.uploader_age),
        "account_country": sub.account_country, "content_type": sub.content_type.value, "text": sub.text,
        "url": sub.url, "media_sha256": _media_sha256(media) if media is not None else "",
        **({"live": True} if sub.live else {})})  # only when set: fingerprints stored before it stay equal


def _media_sha256(media: FileSignals) -> str:
    """The media's SHA-256: the sha256 signal hashing already computed, else read from the file."""
    return next((s.value for s in media.signals if s.signal_type == Sha256Signal.name), None) \
        or digest_file(media.path, "sha256")


def _stored_result(mod: Moderation, content_id: str) -> tuple[IntakeResult, str] | None:
    """The stored answer for ``content_id`` and the fingerprint of the request that got it."""
    with mod.db.read() as session:
        item = session.get(ContentItem, content_id)
        if item is None:
            return None
        judged = {e.kind: e for e in session.scalars(select(ModerationEvent).where(
            ModerationEvent.subject == content_subject(content_id),
            ModerationEvent.kind.in_([EventKind.VERDICT.value, EventKind.SUBMITTED.value])))}
        verdict_event, submitted = judged.get(EventKind.VERDICT.value), judged.get(EventKind.SUBMITTED.value)
        case_id = session.scalar(select(Case.id).where(Case.content_id == content_id,
                                                       Case.reason == CaseReason.UPLOAD.value))
        puid = session.scalar(select(StatementOfReasons.puid).where(StatementOfReasons.content_id == content_id)
                              .order_by(StatementOfReasons.created_at).limit(1))
        verdict = payload(verdict_event, VerdictGiven) if verdict_event else None
        # the platform's wording, as first answered; a verdict recorded before that wording was kept gives none (its
        # internal reasons may name a bank, a rule or a distance: never replayed)
        reasons = (verdict.public_reasons or []) if verdict else []
        request = payload(submitted, Submitted).request_sha256 if submitted else ""
        result = IntakeResult(content_id, Verdict(item.verdict), ContentStatus(item.status), list(reasons),
                              case_id, puid, replay=True, signals=list(item.signals))
        return result, request or _legacy_fingerprint(item)


def _legacy_fingerprint(item: ContentItem) -> str:
    """The fingerprint of content recorded before fingerprints were stored, rebuilt from its row (its fields and
    the SHA-256 its media was hashed to)."""
    digest = next((str(s.get("value")) for s in item.signals if s.get("signal_type") == Sha256Signal.name), "")
    return fingerprint({
        "content_id": item.content_id, "account_id": item.account_id, "uploader_age": float(item.uploader_age),
        "account_country": item.account_country, "content_type": item.content_type, "text": item.text,
        "url": item.url, "media_sha256": digest})


def _record_resubmission(mod: Moderation, sub: Submission, signals: list[HashResult], decision: Decision,
                         actor: Principal, *, matches: Sequence[Match], notes: Sequence[str], request: str,
                         preview: Preview | None = None) -> None:
    """Record a conflicting request on the content it named, and act on it as an upload: the platform may publish
    the new media under the old id, so a block removes the content and a review opens a case about it (with the
    new media's preview: reviewers judge what may now be online, not the first file)."""
    with mod.db.write() as session:
        item = get_item(session, sub.content_id)
        restricted = decision.category is Category.CSAM or any(m.restricted for m in matches)
        log(mod, session, content_subject(sub.content_id), EventKind.RESUBMITTED, actor.actor, Resubmitted(
            account_id=sub.account_id, request_sha256=request, signals=[signal_json(s) for s in signals],
            verdict=decision.verdict.value, rule=decision.rule,
            reasons=[str(r) for r in decision.reasons] + list(notes), matches=_match_records(matches)))
        if decision.verdict is Verdict.ALLOW:
            return
        if preview is not None and mod.sealer is not None:
            kept = session.get(MediaPreview, sub.content_id) or MediaPreview(content_id=sub.content_id)
            kept.sealed = mod.sealer.seal(preview.jpeg, sub.content_id)
            kept.width, kept.height, kept.created_at = preview.width, preview.height, mod.clock.now()
            session.add(kept)
        known = {(s.get("signal_type"), s.get("value")) for s in item.signals}
        item.signals = list(item.signals) + [signal_json(s) for s in signals
                                             if (s.signal_type, s.value) not in known]  # what reviewers judge
        item.updated_at = mod.clock.now()
        review_of = _review_asked(decision)
        if review_of is not None:
            queue, category, severity = review_of
            open_case(mod, session, item, category=category, reason=CaseReason.UPLOAD, severity=severity,
                       queue=queue, restricted=True if restricted else None)
        if decision.verdict is Verdict.BLOCK and ContentStatus(item.status) not in (ContentStatus.BLOCKED,
                                                                                     ContentStatus.REMOVED):
            assert decision.category is not None
            apply(mod, session, item, Outcome(
                actions=list(decision.actions), category=decision.category, territories=list(decision.territories),
                facts=decision.public_facts, decided_by=f"policy:{decision.policy}",
                automated_detection=True, automated=True, source=statements.Source.OWN_INITIATIVE,
                change=change_for_actions(decision.actions)))


def _record_submission(mod: Moderation, sub: Submission, signals: list[HashResult], decision: Decision,
                       actor: Principal, *, matches: Sequence[Match] = (),
                       preview: Preview | None = None, notes: Sequence[str] = (), request: str = ""
                       ) -> IntakeResult:
    now = mod.clock.now()
    reasons = [str(r) for r in decision.reasons] + list(notes)  # for reviewers who may see the case
    answered = decision.public_reasons + list(notes)  # for the platform: no bank, rule, distance or score
    subject = content_subject(sub.content_id)
    events = [NewEvent(subject, EventKind.SUBMITTED, actor.actor, now, Submitted(
        account_id=sub.account_id, content_type=sub.content_type.value, signals=len(signals),
        request_sha256=request, live=sub.live, language=sub.language)),
        NewEvent(subject, EventKind.VERDICT, f"policy:{decision.policy}", now, VerdictGiven(
            verdict=decision.verdict.value, rule=decision.rule, reasons=reasons, public_reasons=answered,
            actions=[a.value for a in decision.actions], matches=_match_records(matches)))]
    events += [NewEvent(subject, EventKind.SHADOW_VERDICT, f"policy:{decision.policy}", now,
                        ShadowVerdict(rule=r.rule, would_be=r.verdict.value, reason=str(r)))
               for r in decision.shadow_reasons]
    sealed = mod.sealer.seal(preview.jpeg, sub.content_id) if preview is not None and mod.sealer is not None else None
    with mod.db.write() as session:
        item = ContentItem(
            content_id=sub.content_id, account_id=sub.account_id, uploader_age=sub.uploader_age,
            account_country=sub.account_country, content_type=sub.content_type.value, text=sub.text, url=sub.url,
            signals=[signal_json(s) for s in signals], verdict=decision.verdict.value,
            status=next_status(None, _intake_change(decision)).value,
            restrictions=content_restrictions(decision.while_in_review),
            category=decision.category.value if decision.category else "", created_at=now, updated_at=now,
            file_name=sub.file_name, live=sub.live)
        session.add(item)
        session.flush()  # a second submission of the same content_id fails here, before any event is written
        # the events and the preview as Core inserts in the same transaction: no ORM object to track for them
        record_many(session, ModerationEvent, events)
        if sealed is not None and preview is not None:
            session.execute(insert(MediaPreview.__table__), {  # type: ignore[arg-type]
                "content_id": sub.content_id, "sealed": sealed, "width": preview.width, "height": preview.height,
                "created_at": now})
        case_id = puid = None
        review_of = _review_asked(decision)
        if review_of is not None:
            queue, category, severity = review_of
            restricted = item.category == Category.CSAM.value or any(m.restricted for m in matches)
            case_id = open_case(mod, session, item, category=category, reason=CaseReason.UPLOAD,
                                 severity=severity, queue=queue, restricted=restricted).id
        if decision.verdict is Verdict.BLOCK:
            assert decision.category is not None
            puid = apply(mod, session, item, Outcome(
                actions=list(decision.actions), category=decision.category, territories=list(decision.territories),
                facts=decision.public_facts,  # what was found and how, never bank, rule or distance
                decided_by=f"policy:{decision.policy}", automated_detection=True,
                automated=True, source=statements.Source.OWN_INITIATIVE,
                change=None if item.status == ContentStatus.BLOCKED.value else change_for_actions(decision.actions)))
        else:
            notify(mod, session, item, PlatformMessage.VERDICT, None)
        return IntakeResult(sub.content_id, decision.verdict, ContentStatus(item.status), answered, case_id, puid,
                            signals=list(item.signals))


def _match_records(matches: Sequence[Match]) -> list[MatchRecord]:
    return [MatchRecord.model_validate({**m.to_json(), "restricted": m.restricted}) for m in matches]


def _review_asked(decision: Decision) -> tuple[str, Category, int] | None:
    """The queue, category and severity of the review the policy asks for, if any: a review verdict, or a review
    rule that held under a block that only restricts (a geo-block must not cancel the review)."""
    if decision.verdict is Verdict.REVIEW:
        assert decision.queue is not None and decision.category is not None
        return decision.queue, decision.category, decision.severity
    if decision.also_review is not None and decision.also_review_queue is not None:
        return decision.also_review_queue, decision.also_review.category, decision.also_review.severity
    return None


def _intake_change(decision: Decision) -> Change:
    """Refused (an automatic removal), held for review, or published (with limits when automatic actions restrict).

    A review rule's actions are what the moderator will be offered, so nothing is applied before the review.
    """
    if decision.verdict is Verdict.BLOCK and Action.REMOVE in decision.actions:
        return Change.BLOCK
    if decision.verdict is Verdict.REVIEW:
        return Change.PUBLISH_LIMITED if decision.while_in_review else Change.HOLD
    return Change.ALLOW
