"""Delivering reports: the outbox ``Sender`` for the ``report.*`` kinds.

NCMEC's API takes a report in several calls (submit, upload each file, file details, finish), so one outbox
message carries a resumable procedure rather than one request. Each step's result is written before the next
starts: the reportId the moment ``/submit`` answers, each fileId the moment ``/upload`` answers. A crash (or a
server error) anywhere leaves the message due again; the retry reads what was done and carries on, so NCMEC
never gets a second ``/submit`` for a report it already has. The one gap the API leaves: if NCMEC accepts a
submit but its answer never arrives, the retry submits again (NCMEC offers no idempotency key); the orphan is
deleted by NCMEC unfinished after 24 hours, and our reference in ``additionalInfo`` lets NCMEC link the two.

When NCMEC's delivery finishes (or is rejected as invalid, which no retry can mend), the EU Centre's report is
queued in the same transaction, carrying NCMEC's report id (Art. 13(h)); the Centre answers with its own id and
its verdict. After an authentication failure or a report NCMEC no longer has, the EU Centre's report waits for the
person who sends it again, so that it can still carry NCMEC's id.

Every step is fenced by the outbox lease (``renew_lease``): a deliverer that lost its claim (it stalled past the
lease and another took the message over) makes no further call and writes nothing. A delivery never stays queued
for ever: when the outbox gives up on its message (out of attempts, or refused: a report that cannot be built,
material that does not open), ``on_dead`` leaves the delivery ``failed`` with the reason, for a person to send
again. The sender does not count attempts: that rule is the outbox's alone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.core import signing
from bastion.core.outbox.models import OutboxMessage
from bastion.core.outbox.services import (
    DEFAULT_LEASE_SECONDS,
    Claim,
    Sender,
    SendResult,
    enqueue,
    is_permanent_status,
    renew_lease,
    short_error,
)
from bastion.core.outbox.webhooks import IDEMPOTENCY_HEADER, canonical_body
from bastion.core.sealing import SealError
from bastion.reporting import ncmec, services
from bastion.reporting.events import DeliveryChanged, ReportEventKind, allowed_from
from bastion.reporting.interfaces import CentreName, DeliveryState, InvalidReport, ReportingError, ReportState
from bastion.reporting.models import ChildSafetyReport, ReportDelivery, ReportedFile
from bastion.reporting.ncmec import Answer, CodeOutcome, NcmecClient
from bastion.reporting.services import Reporting

log = logging.getLogger(__name__)
#: Who the deliveries' events name.
ACTOR = "system:report-sender"
Then = Callable[[Session, ChildSafetyReport, ReportDelivery], None]


class Stop(Exception):
    """Ends a delivery attempt with a ``SendResult`` (after the state was written)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error or "")
        self.result = result


class LeaseLost(Exception):
    """Another deliverer holds the message now: this one stops without a call or a write."""


class ReportSender(Sender):
    """Sends ``report.ncmec``, ``report.ncmec_retract`` and ``report.eu_centre`` messages.

    ``client`` builds the NCMEC client for a URL (tests point it at a local fake); the credentials come from the
    settings.
    """

    def __init__(self, rep: Reporting, *, client: Callable[[str], NcmecClient] | None = None,
                 http: httpx.Client | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.rep = rep
        s = rep.settings
        self._client_factory = client or (lambda url: NcmecClient(url, s.ncmec_username, s.ncmec_password))
        self._http = http or httpx.Client(timeout=30, follow_redirects=False)
        self.lease_seconds = lease_seconds

    def __repr__(self) -> str:
        return "ReportSender()"

    @staticmethod
    def _centre(claim: Claim) -> CentreName:
        return CentreName.EU_CENTRE if claim.kind == services.EU_CENTRE_KIND else CentreName.NCMEC

    def send(self, claim: Claim) -> SendResult:
        try:
            return self._dispatch(claim, str(claim.payload.get("report_id", "")))
        except LeaseLost:
            return SendResult.retry("lease lost to another deliverer")

    def on_dead(self, claim: Claim, result: SendResult) -> None:
        """The outbox gave up on this message for good: a delivery still in flight is failed with the outbox's
        reason, or it would show queued for ever. One failed already (with its own reason) is left as it is; a
        retract that failed leaves the report where it was (its error is on the delivery)."""
        if claim.kind == services.NCMEC_RETRACT_KIND:
            return
        report_id = str(claim.payload.get("report_id", ""))
        centre = self._centre(claim)
        with self.rep.db.write() as session:
            report = session.get(ChildSafetyReport, report_id)
            delivery = services.deliveries_of(session, report_id).get(centre) if report is not None else None
            if report is None or delivery is None:
                log.warning("report delivery %s gave up with no delivery row to mark", claim.id)
                return
            if ReportState(delivery.state) not in allowed_from(ReportEventKind.FAILED):
                return
            why = session.scalar(select(OutboxMessage.last_error).where(OutboxMessage.id == claim.id))
            delivery.error = short_error(f"{why or result.error or 'failed'}; send again")
            services.transition(session, self.rep.clock, report, ReportEventKind.FAILED, actor=ACTOR,
                                delivery=delivery, data=DeliveryChanged(centre=centre.value,
                                                                        remote_id=delivery.remote_id,
                                                                        error=delivery.error))

    def _dispatch(self, claim: Claim, report_id: str) -> SendResult:
        try:
            if claim.kind == services.NCMEC_KIND:
                return self._ncmec(claim, report_id)
            if claim.kind == services.NCMEC_RETRACT_KIND:
                return self._retract(claim, report_id)
            if claim.kind == services.EU_CENTRE_KIND:
                return self._eu_centre(claim, report_id)
        except Stop as stop:
            return stop.result
        except httpx.HTTPError as exc:
            error = f"network: {type(exc).__name__}"
            self._note(claim, report_id, self._centre(claim), error=error)
            return SendResult.retry(error)
        except (ReportingError, SealError, ValueError) as exc:
            # No retry can mend a report that cannot be built, material that does not open, a bad destination:
            # the outbox gives up, and ``on_dead`` fails the delivery with this reason.
            return SendResult.give_up(short_error(f"{type(exc).__name__}: {exc}"))
        return SendResult.give_up(f"not a report kind: {claim.kind}")

    # --- state ----------------------------------------------------------------------------------------------

    def _fence(self, claim: Claim) -> None:
        """Before each call to a centre: still ours? Renew the lease for the call, or stop."""
        with self.rep.db.write() as session:
            self._hold(session, claim)

    def _hold(self, session: Session, claim: Claim) -> None:
        if not renew_lease(session, claim, clock=self.rep.clock, lease_seconds=self.lease_seconds):
            raise LeaseLost()

    def _note(self, claim: Claim, report_id: str, centre: CentreName, *, event: ReportEventKind | None = None,
              then: Then | None = None, **values: Any) -> None:
        """Write a delivery's new facts, and its transition by ``event`` (recorded; the report follows NCMEC's),
        in one transaction, only while this claim still holds its message."""
        with self.rep.db.write() as session:
            self._hold(session, claim)
            report = services.get_report(session, report_id)
            delivery = services.deliveries_of(session, report_id)[centre]
            for name, value in values.items():
                setattr(delivery, name, value)
            delivery.updated_at = self.rep.clock.now()
            if event is not None:
                services.transition(session, self.rep.clock, report, event, actor=ACTOR, delivery=delivery,
                                    data=DeliveryChanged(centre=centre.value, remote_id=delivery.remote_id,
                                                         error=delivery.error))
            if then is not None:
                then(session, report, delivery)

    def _answer(self, claim: Claim, report_id: str, answer: Answer, step: str) -> None:
        """Carry on after a success; otherwise write the failure and stop with the matching outbox result."""
        outcome = answer.outcome
        if outcome is CodeOutcome.OK:
            return
        error = short_error(f"{step}: {answer.summary()}")
        if outcome is CodeOutcome.RETRY:
            self._note(claim, report_id, CentreName.NCMEC, error=error)
            raise Stop(SendResult.retry(error))
        if outcome is CodeOutcome.ALREADY_RETRACTED:  # someone retracted it at NCMEC: nothing more to send
            self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.RETRACTED, error=error)
            raise Stop(SendResult.delivered())
        then: Then | None = None
        if outcome is CodeOutcome.AUTH:
            error = short_error(f"{step}: {answer.summary()}: check the NCMEC credentials, then send again")
        elif outcome is CodeOutcome.GONE:
            error = short_error(f"{step}: {answer.summary()}: NCMEC no longer has it; sending again starts anew")
            then = self._forget_remote
        else:  # rejected as it is: it will never pass, so the EU Centre need not wait for an NCMEC id
            then = self._queue_eu
        self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.FAILED, error=error, then=then)
        raise Stop(SendResult.give_up(error))

    @staticmethod
    def _forget_remote(session: Session, report: ChildSafetyReport, delivery: ReportDelivery) -> None:
        """NCMEC deleted the report (unfinished after 24 h, say): a resend must submit it again, files and all."""
        delivery.remote_id = ""
        for f in services.files_of(session, report.id):
            f.ncmec_file_id, f.ncmec_md5, f.ncmec_details_sent = "", "", False

    def _queue_eu(self, session: Session, report: ChildSafetyReport, _ncmec: ReportDelivery) -> None:
        """NCMEC is done with this report (finished or failed): now the EU Centre's report, with NCMEC's id."""
        eu = services.deliveries_of(session, report.id).get(CentreName.EU_CENTRE)
        if eu is None or eu.document:
            return
        destination = self.rep.settings.eu_centre_url
        if not destination:  # configured when the report was sent, gone since: a person must send it again
            eu.error = "no EU Centre configured (BASTION_EU_CENTRE_URL)"
            services.transition(session, self.rep.clock, report, ReportEventKind.FAILED, actor=ACTOR, delivery=eu,
                                data=DeliveryChanged(centre=CentreName.EU_CENTRE.value, error=eu.error))
            return
        body = services.eu_centre_document(session, self.rep, report)
        eu.document = canonical_body(body).decode()
        enqueue(session, kind=services.EU_CENTRE_KIND, destination=destination,
                payload={"report_id": report.id}, idempotency_key=f"{services.EU_CENTRE_KIND}:{report.id}",
                clock=self.rep.clock)

    # --- NCMEC ----------------------------------------------------------------------------------------------

    def _ncmec(self, claim: Claim, report_id: str) -> SendResult:
        if not self.rep.settings.ncmec_username:
            # Retryable, like an unset webhook secret: configuring the credentials within the retry window sends it.
            self._note(claim, report_id, CentreName.NCMEC,
                       error="NCMEC credentials not configured (BASTION_NCMEC_USERNAME)")
            return SendResult.retry("NCMEC credentials not configured")
        # The claim's stored destination, checked again: production only when switched on, HTTPS off loopback.
        url = ncmec.check_url(claim.destination, production=self.rep.settings.ncmec_production)
        with self.rep.db.read() as session:
            report = services.get_report(session, report_id)
            delivery = services.deliveries_of(session, report_id)[CentreName.NCMEC]
            if delivery.state in (DeliveryState.FINISHED.value, DeliveryState.RETRACTED.value):
                return SendResult.delivered()
            document, remote_id = delivery.document.encode(), delivery.remote_id
            files = services.files_of(session, report_id)
            statuses = {f.content_id: services.content_status(session, f.content_id) for f in files}
            session.expunge_all()
        client = self._client_factory(url)
        try:
            if not remote_id:
                try:
                    ncmec.validate(document, self.rep.settings.ncmec_xsd)
                except InvalidReport as exc:
                    self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.FAILED, error=str(exc))
                    return SendResult.give_up(short_error(str(exc)))
                self._fence(claim)
                answer = client.submit(document)
                self._answer(claim, report_id, answer, "submit")
                remote_id = answer.report_id
                self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.SUBMITTED, remote_id=remote_id,
                           error="")
            for f in files:
                self._send_file(claim, client, report, f, remote_id, statuses[f.content_id])
            self._fence(claim)
            answer = client.finish(remote_id)
            if answer.outcome is not CodeOutcome.ALREADY_FINISHED:
                self._answer(claim, report_id, answer, "finish")
            self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.FINISHED, error="",
                       then=self._queue_eu)
            return SendResult.delivered()
        finally:
            client.close()

    def _send_file(self, claim: Claim, client: NcmecClient, report: ChildSafetyReport, f: ReportedFile,
                   remote_id: str, status: str) -> None:
        """Upload one file (unless NCMEC has it) and send its details (unless sent); stop on any failure."""
        report_id = report.id
        if f.sealed is None:
            if f.attached:  # held when the report was sent, gone since: NCMEC would never get it
                error = f"upload {f.content_id}: its material is no longer held (purged?); a person must act"
                self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.FAILED, error=error)
                raise Stop(SendResult.give_up(error))
            return  # reported by its hashes in additionalInfo
        if not f.ncmec_file_id:
            data = self.rep.sealer.open(f.sealed, f"report-file:{report_id}:{f.content_id}")
            self._fence(claim)
            answer = client.upload(remote_id, f.file_name or f.content_id, data)
            self._answer(claim, report_id, answer, f"upload {f.content_id}")
            if answer.md5 and answer.md5 != hashlib.md5(data).hexdigest():
                # Uploading again would loop on the same corruption: stop and ask a person.
                error = f"upload {f.content_id}: NCMEC's MD5 differs from ours; check the link, then send again"
                self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.FAILED, error=error)
                raise Stop(SendResult.give_up(error))
            f.ncmec_file_id, f.ncmec_md5 = answer.file_id, answer.md5
            self._file(claim, f.id, ncmec_file_id=answer.file_id, ncmec_md5=answer.md5)
        if not f.ncmec_details_sent:
            details = services.file_details(report, f, remote_id, status)
            ncmec.validate(details, self.rep.settings.ncmec_xsd)
            self._fence(claim)
            answer = client.file_info(details)
            if answer.code == ncmec.FILE_GONE:  # NCMEC lost that file: upload it again, and only it
                error = short_error(f"fileinfo {f.content_id}: {answer.summary()}: uploading the file again")
                self._file(claim, f.id, ncmec_file_id="", ncmec_md5="")
                self._note(claim, report_id, CentreName.NCMEC, error=error)
                raise Stop(SendResult.retry(error))
            self._answer(claim, report_id, answer, f"fileinfo {f.content_id}")
            self._file(claim, f.id, ncmec_details_sent=True, ncmec_details=details.decode())

    def _file(self, claim: Claim, file_id: int, **values: Any) -> None:
        with self.rep.db.write() as session:
            self._hold(session, claim)
            row = session.get(ReportedFile, file_id)
            if row is None:
                raise ReportingError(f"reported file {file_id} vanished during delivery")
            for name, value in values.items():
                setattr(row, name, value)

    def _retract(self, claim: Claim, report_id: str) -> SendResult:
        url = ncmec.check_url(claim.destination, production=self.rep.settings.ncmec_production)
        with self.rep.db.read() as session:
            delivery = services.deliveries_of(session, report_id)[CentreName.NCMEC]
            if delivery.state == DeliveryState.RETRACTED.value:  # NCMEC said so while delivering it
                return SendResult.delivered()
            remote_id = delivery.remote_id
        client = self._client_factory(url)
        try:
            self._fence(claim)
            answer = client.retract(remote_id)
        finally:
            client.close()
        if answer.outcome in (CodeOutcome.OK, CodeOutcome.ALREADY_RETRACTED):
            self._note(claim, report_id, CentreName.NCMEC, event=ReportEventKind.RETRACTED, error="")
            return SendResult.delivered()
        error = short_error(f"retract: {answer.summary()}")
        self._note(claim, report_id, CentreName.NCMEC, error=error)
        return SendResult.retry(error) if answer.outcome is CodeOutcome.RETRY else SendResult.give_up(error)

    # --- the EU Centre --------------------------------------------------------------------------------------

    def _eu_centre(self, claim: Claim, report_id: str) -> SendResult:
        with self.rep.db.read() as session:
            body = services.deliveries_of(session, report_id)[CentreName.EU_CENTRE].document.encode()
        token = self.rep.settings.eu_centre_token
        if not token:
            return SendResult.retry("EU Centre token not configured")
        key = self.rep.signing_key  # ValueError on a malformed key: a person must fix it (given up, shown)
        if key is None:
            # Retryable, like the token: configuring the key within the retry window sends it.
            self._note(claim, report_id, CentreName.EU_CENTRE,
                       error="no signing key for the EU Centre's report (BASTION_ORDERS_SIGNING_KEY)")
            return SendResult.retry("EU Centre signing key not configured")
        # Art. 13(b): signed when it is sent (a retry gets a fresh time stamp), over the exact bytes stored.
        signature = key.headers(body, self.rep.clock.now())
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   IDEMPOTENCY_HEADER: claim.idempotency_key, **signature}
        self._fence(claim)
        response = self._http.post(claim.destination, content=body, headers=headers)
        if response.status_code in (200, 201):
            answer = response.json()
            self._note(claim, report_id, CentreName.EU_CENTRE, event=ReportEventKind.FINISHED,
                       remote_id=_text(answer.get("id")), centre_status=_text(answer.get("status")),
                       error=short_error(_text(answer.get("reason"))),
                       signature=signature[signing.SIGNATURE_HEADER])
            return SendResult.delivered(response.status_code)
        error = f"EU Centre: HTTP {response.status_code}"
        if response.status_code == 401 and _problem_reason(response):  # the signature, not the token
            error += f" ({_problem_reason(response)})"
        if is_permanent_status(response.status_code):
            self._note(claim, report_id, CentreName.EU_CENTRE, event=ReportEventKind.FAILED, error=error)
            return SendResult.give_up(error, response.status_code)
        self._note(claim, report_id, CentreName.EU_CENTRE, error=error)
        return SendResult.retry(error, response.status_code)


def _text(value: Any) -> str:
    """A field of the Centre's answer as text; a null is empty, not the word "None"."""
    return "" if value is None else str(value)


def _problem_reason(response: httpx.Response) -> str:
    """The ``reason`` of a problem+json answer (``unknown_key``, ``bad_signature``...), or ""."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return _text(body.get("reason"))[:40] if isinstance(body, dict) else ""
