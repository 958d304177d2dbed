"""The analyst's view of the classifiers: what runs, and how the trained models did on held-out decisions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from bastion.classifiers import services
from bastion.classifiers.interfaces import Classifier
from bastion.core.auth import roles
from bastion.core.auth.services import Principal
from bastion.core.http import require

router = APIRouter(prefix="/v1", tags=["classifiers"])


def configured(request: Request) -> tuple[Classifier, ...]:
    found = getattr(request.app.state, "classifiers", ())
    return tuple(found)


def overview(request: Request) -> dict[str, Any]:
    """Configured classifiers, every category's model in force with its held-out metrics, and the corpus sizes."""
    with request.app.state.ctx.db.read() as session:
        models = [services.model_json(m) for m in services.latest_models(session)]
        corpus = services.corpus_counts(session)
    return {"classifiers": [c.describe() for c in configured(request)], "models": models, "corpus": corpus}


@router.get("/classifiers", summary="Classifiers, and trained models' held-out precision and recall (analysts)")
def list_classifiers(request: Request, principal: Annotated[Principal, Depends(require(roles.CLASSIFIERS))]
                     ) -> dict[str, Any]:
    return overview(request)
