"""Child-safety reports over HTTP: specialists review drafts and send them; the platform hands in file bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import Problem, require
from bastion.core.sealing import SealError
from bastion.reporting import services
from bastion.reporting.interfaces import CentreName, Classification, ReportingError, ReportState
from bastion.reporting.services import Reporting

router = APIRouter(prefix="/v1/reports", tags=["child-safety reports"])
Specialist = Annotated[Principal, Depends(require(roles.REPORTS))]
T = TypeVar("T")


def reporting(request: Request) -> Reporting:
    rep = request.app.state.reporting
    assert isinstance(rep, Reporting)
    return rep


def checked(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ReportingError as exc:
        raise Problem(exc.status, type(exc).__name__, str(exc)) from None
    except SealError:
        raise Problem(500, "Sealed material does not open", "the media key does not open this material") from None


def _view(rep: Reporting, report_id: str) -> dict[str, Any]:
    with rep.db.read() as session:
        return services.report_view(session, services.get_report(session, report_id))


class Revision(BaseModel):
    urgent_reason: str | None = Field(default=None, max_length=2000)
    classifications: dict[str, Classification] = Field(default_factory=dict)


@router.get("", summary="Reports with their state, files' hashes, and each centre's id and error")
def list_reports(request: Request, _p: Specialist, state: ReportState | None = None) -> dict[str, Any]:
    rep = reporting(request)
    with rep.db.read() as session:
        return {"reports": [services.report_view(session, r) for r in services.list_reports(session, state)]}


@router.post("/drafts", summary="Draft reports for confirmed material not yet reported (one per account)")
def draft(request: Request, _p: Specialist) -> dict[str, Any]:
    return {"drafted": services.draft_pending(reporting(request))}


@router.get("/{report_id}", summary="One report")
def get_report(report_id: str, request: Request, _p: Specialist) -> dict[str, Any]:
    return checked(lambda: _view(reporting(request), report_id))


@router.patch("/{report_id}", summary="Review a draft: urgency and each file's industry classification")
def revise(report_id: str, body: Revision, request: Request, _p: Specialist) -> dict[str, Any]:
    rep = reporting(request)
    checked(lambda: services.revise(rep, report_id, urgent_reason=body.urgent_reason,
                                    classifications=body.classifications))
    return _view(rep, report_id)


@router.put("/{report_id}/files/{content_id}", summary="Hand in a reported file's bytes (checked, then sealed)")
def supply(report_id: str, content_id: str, request: Request,
           _p: Annotated[Principal, Depends(require(roles.REPORT_MATERIAL))],
           file: Annotated[UploadFile, File()]) -> dict[str, Any]:
    rep = reporting(request)
    data = file.file.read()
    row = checked(lambda: services.supply_material(rep, report_id, content_id, data, file.filename or content_id))
    # The platform learns what it handed in, nothing of the report (other files, hashes, classifications).
    return {"content_id": row.content_id, "material_held": row.sealed is not None}


@router.get("/{report_id}/files/{content_id}", summary="Open preserved material (child-safety only; audited)")
def open_material(report_id: str, content_id: str, request: Request, principal: Specialist) -> Response:
    data = checked(lambda: services.open_material(reporting(request), report_id, content_id, actor=principal))
    return Response(data, media_type="application/octet-stream",
                    headers={"Cache-Control": "no-store", "Content-Disposition": "attachment"})


@router.post("/{report_id}/send", status_code=202, summary="Validate and send a reviewed draft to the centres")
def send(report_id: str, request: Request, principal: Specialist) -> dict[str, Any]:
    rep = reporting(request)
    checked(lambda: services.send(rep, report_id, actor=principal))
    return _view(rep, report_id)


@router.post("/{report_id}/resend", status_code=202, summary="Send a failed report again (resumes where it stopped)")
def resend(report_id: str, request: Request, principal: Specialist,
           centre: CentreName = CentreName.NCMEC) -> dict[str, Any]:
    rep = reporting(request)
    checked(lambda: services.resend(rep, report_id, actor=principal, centre=centre))
    return _view(rep, report_id)


@router.post("/{report_id}/retract", status_code=202, summary="Ask NCMEC to retract the report")
def retract(report_id: str, request: Request, principal: Specialist) -> dict[str, Any]:
    rep = reporting(request)
    checked(lambda: services.retract(rep, report_id, actor=principal))
    return _view(rep, report_id)
