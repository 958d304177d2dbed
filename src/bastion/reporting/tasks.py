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
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session

from bastion.core.outbox.services import Claim, Sender, SendResult, enqueue, is_permanent_status, short_error
from bastion.core.outbox.webhooks import IDEMPOTENCY_HEADER, canonical_body
from bastion.reporting import ncmec, services
from bastion.reporting.interfaces import CentreName, DeliveryState, InvalidReport, ReportState
from bastion.reporting.models import ChildSafetyReport, ReportDelivery, ReportedFile
from bastion.reporting.ncmec import Answer, CodeOutcome, NcmecClient
from bastion.reporting.services import Reporting

log = logging.getLogger(__name__)


class Stop(Exception):
    """Ends a delivery attempt with a ``SendResult`` (after the state was written)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error or "")
        self.result = result


class ReportSender(Sender):
    """Sends ``report.ncmec``, ``report.ncmec_retract`` and ``report.eu_centre`` messages.

    ``client`` builds the NCMEC client (tests point it at a local fake); the credentials come from the settings.
    """

    def __init__(self, rep: Reporting, *, client: Callable[[], NcmecClient] | None = None,
                 http: httpx.Client | None = None) -> None:
        self.rep = rep
        s = rep.settings
        self._client_factory = client or (lambda: NcmecClient(rep.ncmec_url, s.ncmec_username, s.ncmec_password))
        self._http = http or httpx.Client(timeout=30, follow_redirects=False)

    def __repr__(self) -> str:
        return "ReportSender()"

    def send(self, claim: Claim) -> SendResult:
        report_id = str(claim.payload.get("report_id", ""))
        try:
            if claim.kind == services.NCMEC_KIND:
                return self._ncmec(report_id)
            if claim.kind == services.NCMEC_RETRACT_KIND:
                return self._retract(report_id)
            if claim.kind == services.EU_CENTRE_KIND:
                return self._eu_centre(report_id, claim)
        except Stop as stop:
            return stop.result
        except httpx.HTTPError as exc:
            error = f"network: {type(exc).__name__}"
            self._note(report_id, CentreName.EU_CENTRE if claim.kind == services.EU_CENTRE_KIND
                       else CentreName.NCMEC, error=error)
            return SendResult.retry(error)
        return SendResult.give_up(f"not a report kind: {claim.kind}")

    # --- state ----------------------------------------------------------------------------------------------

    def _note(self, report_id: str, centre: CentreName, *, state: DeliveryState | None = None,
              then: Callable[[Session, ChildSafetyReport, ReportDelivery], None] | None = None,
              **values: Any) -> None:
        """Write a delivery's new facts (and the report's state, which follows NCMEC's) in one transaction."""
        with self.rep.db.write() as session:
            report = services.get_report(session, report_id)
            delivery = services.deliveries_of(session, report_id)[centre]
            for name, value in values.items():
                setattr(delivery, name, value)
            if state is not None:
                delivery.state = state.value
                if centre is CentreName.NCMEC:
                    report.state = ReportState(state.value).value
            delivery.updated_at = self.rep.clock.now()
            if then is not None:
                then(session, report, delivery)

    def _answer(self, report_id: str, answer: Answer, step: str) -> None:
        """Carry on after a success; otherwise write the failure and stop with the matching outbox result."""
        outcome = answer.outcome
        if outcome is CodeOutcome.OK:
            return
        error = short_error(f"{step}: {answer.summary()}")
        if outcome is CodeOutcome.RETRY:
            self._note(report_id, CentreName.NCMEC, error=error)
            raise Stop(SendResult.retry(error))
        then: Callable[[Session, ChildSafetyReport, ReportDelivery], None] | None = None
        if outcome is CodeOutcome.AUTH:
            error = short_error(f"{step}: {answer.summary()}: check the NCMEC credentials, then send again")
        elif outcome is CodeOutcome.GONE:
            error = short_error(f"{step}: {answer.summary()}: NCMEC no longer has it; sending again starts anew")
            then = self._forget_remote
        else:  # rejected as it is: it will never pass, so the EU Centre need not wait for an NCMEC id
            then = self._queue_eu
        self._note(report_id, CentreName.NCMEC, state=DeliveryState.FAILED, error=error, then=then)
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
        body = services.eu_centre_document(session, self.rep, report)
        eu.document = canonical_body(body).decode()
        assert self.rep.settings.eu_centre_url is not None
        enqueue(session, kind=services.EU_CENTRE_KIND, destination=self.rep.settings.eu_centre_url,
                payload={"report_id": report.id}, idempotency_key=f"{services.EU_CENTRE_KIND}:{report.id}",
                clock=self.rep.clock)

    # --- NCMEC ----------------------------------------------------------------------------------------------

    def _ncmec(self, report_id: str) -> SendResult:
        if not self.rep.settings.ncmec_username:
            # Retryable, like an unset webhook secret: configuring the credentials within the retry window sends it.
            self._note(report_id, CentreName.NCMEC, error="NCMEC credentials not configured (BASTION_NCMEC_USERNAME)")
            return SendResult.retry("NCMEC credentials not configured")
        with self.rep.db.read() as session:
            report = services.get_report(session, report_id)
            delivery = services.deliveries_of(session, report_id)[CentreName.NCMEC]
            if delivery.state in (DeliveryState.FINISHED.value, DeliveryState.RETRACTED.value):
                return SendResult.delivered()
            document, remote_id = delivery.document.encode(), delivery.remote_id
            files = services.files_of(session, report_id)
            statuses = {f.content_id: services.content_status(session, f.content_id) for f in files}
            sealed = {f.content_id: f.sealed for f in files}
            session.expunge_all()
        client = self._client_factory()
        try:
            if not remote_id:
                try:
                    ncmec.validate(document, self.rep.settings.ncmec_xsd)
                except InvalidReport as exc:
                    self._note(report_id, CentreName.NCMEC, state=DeliveryState.FAILED, error=str(exc))
                    return SendResult.give_up(short_error(str(exc)))
                answer = client.submit(document)
                self._answer(report_id, answer, "submit")
                remote_id = answer.report_id
                self._note(report_id, CentreName.NCMEC, state=DeliveryState.SUBMITTED, remote_id=remote_id, error="")
            for f in files:
                blob = sealed[f.content_id]
                if blob is None:
                    continue  # reported by its hashes in additionalInfo
                if not f.ncmec_file_id:
                    data = self.rep.sealer.open(blob, f"report-file:{report_id}:{f.content_id}")
                    answer = client.upload(remote_id, f.file_name or f.content_id, data)
                    self._answer(report_id, answer, f"upload {f.content_id}")
                    if answer.md5 and answer.md5 != hashlib.md5(data).hexdigest():
                        self._note(report_id, CentreName.NCMEC, error=f"upload {f.content_id}: MD5 differs")
                        return SendResult.retry(f"upload {f.content_id}: NCMEC's MD5 differs from ours")
                    f.ncmec_file_id, f.ncmec_md5 = answer.file_id, answer.md5
                    self._file(f.id, ncmec_file_id=answer.file_id, ncmec_md5=answer.md5)
                if not f.ncmec_details_sent:
                    details = services.file_details(report, f, remote_id, statuses[f.content_id])
                    ncmec.validate(details, self.rep.settings.ncmec_xsd)
                    self._answer(report_id, client.file_info(details), f"fileinfo {f.content_id}")
                    self._file(f.id, ncmec_details_sent=True)
            answer = client.finish(remote_id)
            if answer.outcome is not CodeOutcome.ALREADY_FINISHED:
                self._answer(report_id, answer, "finish")
            self._note(report_id, CentreName.NCMEC, state=DeliveryState.FINISHED, error="", then=self._queue_eu)
            return SendResult.delivered()
        finally:
            client.close()

    def _file(self, file_id: int, **values: Any) -> None:
        with self.rep.db.write() as session:
            row = session.get(ReportedFile, file_id)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)

    def _retract(self, report_id: str) -> SendResult:
        with self.rep.db.read() as session:
            remote_id = services.deliveries_of(session, report_id)[CentreName.NCMEC].remote_id
        client = self._client_factory()
        try:
            answer = client.retract(remote_id)
        finally:
            client.close()
        if answer.outcome in (CodeOutcome.OK, CodeOutcome.ALREADY_RETRACTED):
            self._note(report_id, CentreName.NCMEC, state=DeliveryState.RETRACTED, error="")
            return SendResult.delivered()
        error = short_error(f"retract: {answer.summary()}")
        self._note(report_id, CentreName.NCMEC, error=error)
        return SendResult.retry(error) if answer.outcome is CodeOutcome.RETRY else SendResult.give_up(error)

    # --- the EU Centre --------------------------------------------------------------------------------------

    def _eu_centre(self, report_id: str, claim: Claim) -> SendResult:
        with self.rep.db.read() as session:
            body = services.deliveries_of(session, report_id)[CentreName.EU_CENTRE].document.encode()
        token = self.rep.settings.eu_centre_token
        if not token:
            return SendResult.retry("EU Centre token not configured")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   IDEMPOTENCY_HEADER: claim.idempotency_key}
        response = self._http.post(claim.destination, content=body, headers=headers)
        if response.status_code in (200, 201):
            answer = response.json()
            self._note(report_id, CentreName.EU_CENTRE, state=DeliveryState.FINISHED,
                       remote_id=str(answer.get("id", "")), centre_status=str(answer.get("status", "")),
                       error=short_error(str(answer.get("reason", ""))))
            return SendResult.delivered(response.status_code)
        error = f"EU Centre: HTTP {response.status_code}"
        if is_permanent_status(response.status_code):
            self._note(report_id, CentreName.EU_CENTRE, state=DeliveryState.FAILED, error=error)
            return SendResult.give_up(error, response.status_code)
        self._note(report_id, CentreName.EU_CENTRE, error=error)
        return SendResult.retry(error, response.status_code)
