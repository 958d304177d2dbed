"""Child-safety reports over HTTP: specialists review drafts and send them; the platform hands in file bytes.

Refusals are the domain's errors (``interfaces.py``; a seal that does not open is ``SealError``), answered as
problem+json by the app's one handler: no route catches them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import require
from bastion.reporting import services
from bastion.reporting.interfaces import CentreName, Classification, ReportState
from bastion.reporting.services import Reporting

router = APIRouter(prefix="/v1/reports", tags=["child-safety reports"])


def reporting(request: Request) -> Reporting:
    rep = request.app.state.reporting
    assert isinstance(rep, Reporting)
    return rep


Rep = Annotated[Reporting, Depends(reporting)]
Specialist = Annotated[Principal, Depends(require(roles.REPORTS))]
Platform = Annotated[Principal, Depends(require(roles.REPORT_MATERIAL))]


class Revision(BaseModel):
    urgent_reason: str | None = Field(default=None, max_length=2000)
    classifications: dict[str, Classification] = Field(default_factory=dict)


class ReportFile(BaseModel):
    """A reported file: its hashes and classification, never its bytes."""

    content_id: str
    content_type: str
    trigger: str
    md5: str
    sha256: str
    classification: str | None
    material_held: bool
    ncmec_file_id: str | None
    original_file_name: str | None
    known_from: list[str] = Field(default_factory=list, description="the restricted bank entries it matched at upload, "
                                  "each with the exchange and record it came from")


class RepeatedUpload(BaseModel):
    """Another upload of a reported file by the same account."""

    content_id: str
    repeat_of: str
    uploaded_at: str
    after_sending: bool


class CentreDelivery(BaseModel):
    """The report at one centre: its state, the centre's id of it, the last error and the centre's verdict."""

    state: str
    id: str | None
    error: str | None
    centre_status: str | None


class Report(BaseModel):
    """A report as the API and the console show it (``services.report_view``); times are ISO 8601."""

    id: str
    account_id: str
    state: ReportState
    trigger: str
    incident_type: str
    incident_at: str
    urgent: bool
    urgent_reason: str
    removed: bool
    fingerprint: str
    created_at: str
    sent_at: str | None
    sent_by: str
    preserve_until: str
    purged_at: str | None
    files: list[ReportFile]
    repeats: list[RepeatedUpload]
    centres: dict[CentreName, CentreDelivery]


class Reports(BaseModel):
    reports: list[Report]


class Drafts(BaseModel):
    #: The ids of the drafts made or extended.
    drafted: list[str]


class MaterialReceipt(BaseModel):
    """What the platform learns of what it handed in: nothing of the report (other files, hashes, classes)."""

    content_id: str
    material_held: bool


def _view(rep: Reporting, report_id: str) -> Report:
    with rep.db.read() as session:
        return Report.model_validate(services.report_view(session, services.get_report(session, report_id)))


@router.get("", summary="Reports with their state, files' hashes, and each centre's id and error")
def list_reports(rep: Rep, _p: Specialist, state: ReportState | None = None) -> Reports:
    with rep.db.read() as session:
        return Reports.model_validate({"reports": services.report_views(session, services.list_reports(session,
                                                                                                        state))})


@router.post("/drafts", summary="Draft reports for confirmed material not yet reported (one per account)")
def draft(rep: Rep, principal: Specialist) -> Drafts:
    return Drafts(drafted=services.draft_pending(rep, actor=principal.actor))


@router.get("/{report_id}", summary="One report")
def get_report(report_id: str, rep: Rep, _p: Specialist) -> Report:
    return _view(rep, report_id)


@router.patch("/{report_id}", summary="Review a draft: urgency and each file's industry classification")
def revise(report_id: str, body: Revision, rep: Rep, principal: Specialist) -> Report:
    services.revise(rep, report_id, urgent_reason=body.urgent_reason, classifications=body.classifications,
                    actor=principal.actor)
    return _view(rep, report_id)


@router.put("/{report_id}/files/{content_id}", summary="Hand in a reported file's bytes (checked, then sealed)")
def supply(report_id: str, content_id: str, rep: Rep, principal: Platform,
           file: Annotated[UploadFile, File()]) -> MaterialReceipt:
    row = services.supply_material(rep, report_id, content_id, file.file.read(), file.filename or content_id,
                                   actor=principal.actor)
    return MaterialReceipt(content_id=row.content_id, material_held=row.sealed is not None)


@router.get("/{report_id}/files/{content_id}", summary="Open preserved material (child-safety only; audited)",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
def open_material(report_id: str, content_id: str, rep: Rep, principal: Specialist) -> Response:
    data = services.open_material(rep, report_id, content_id, actor=principal)
    return Response(data, media_type="application/octet-stream",
                    headers={"Cache-Control": "no-store", "Content-Disposition": "attachment"})


@router.post("/{report_id}/send", status_code=202, summary="Validate and send a reviewed draft to the centres")
def send(report_id: str, rep: Rep, principal: Specialist) -> Report:
    services.send(rep, report_id, actor=principal)
    return _view(rep, report_id)


@router.post("/{report_id}/resend", status_code=202, summary="Send a failed report again (resumes where it stopped)")
def resend(report_id: str, rep: Rep, principal: Specialist, centre: CentreName = CentreName.NCMEC) -> Report:
    services.resend(rep, report_id, actor=principal, centre=centre)
    return _view(rep, report_id)


@router.post("/{report_id}/retract", status_code=202, summary="Ask NCMEC to retract the report")
def retract(report_id: str, rep: Rep, principal: Specialist) -> Report:
    services.retract(rep, report_id, actor=principal)
    return _view(rep, report_id)
