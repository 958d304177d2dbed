"""A model the platform hosts, reached over HTTP: Bastion posts the upload and reads ``{"scores": {name: float}}``.

Text goes as JSON ``{"text": ...}``; a media file goes as multipart (``media`` = the bytes, ``kind`` = image or
video, ``text`` = the caption). The answer is checked strictly: an object ``scores`` whose names are the ones
configured and whose values are numbers in [0, 1]. Anything else (a timeout, a refused connection, an HTTP error, a
body that is not that shape) is a ``ClassifierFailed`` with a short reason: intake goes on without the score.

The bearer token (``BASTION_CLASSIFIER_TOKEN``) is sent in a header and appears in no reason, log line or repr.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx

from bastion.classifiers.interfaces import Accepts, Classifier, ClassifierContext, ClassifierFailed, Content
from bastion.classifiers.options import Options

#: The most a hosted model may answer: scores are a few hundred bytes.
MAX_ANSWER_BYTES = 64 * 1024


class HttpClassifier(Classifier):
    kind = "http"

    def __init__(self, name: str, url: str, scores: Sequence[str], accepts: frozenset[Accepts], *,
                 timeout_seconds: float = 2.0, token: str = "") -> None:
        self.name = name
        self.url = url
        self._scores = tuple(scores)
        self._accepts = accepts
        self.timeout_seconds = timeout_seconds
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(timeout=timeout_seconds, headers=headers, follow_redirects=False)

    def __repr__(self) -> str:
        return f"HttpClassifier(name={self.name!r}, scores={self._scores!r})"

    @classmethod
    def configure(cls, entry: Mapping[str, Any], ctx: ClassifierContext) -> Self:
        o = Options(entry)
        url = o.text("url")
        if not url.startswith(("http://", "https://")):
            raise o.error("url", "an http:// or https:// URL is required")
        built = cls(o.text("name"), url, o.score_names("scores"), o.accepts("accepts", [Accepts.TEXT]),
                    timeout_seconds=o.number("timeout_seconds", 2.0, low=0.05, high=60), token=ctx.token)
        o.done()
        return built

    def score_names(self) -> Sequence[str]:
        return self._scores

    def accepts(self) -> frozenset[Accepts]:
        return self._accepts

    def close(self) -> None:
        """Close the connection pool; an upload scored after this gets a ``ClassifierFailed``, not a crash."""
        self._client.close()

    def classify(self, content: Content) -> dict[str, float]:
        if self._client.is_closed:
            raise ClassifierFailed("closed (the app is shutting down)")
        deadline = time.monotonic() + self.timeout_seconds
        try:
            status, body = self._post(content, deadline)
        except httpx.TimeoutException:
            raise ClassifierFailed(f"no answer within {self.timeout_seconds:g} s") from None
        except (httpx.HTTPError, OSError) as exc:
            raise ClassifierFailed(f"unreachable ({type(exc).__name__})") from None
        if status != 200:
            raise ClassifierFailed(f"answered HTTP {status}")
        return self._scores_of(body)

    def _post(self, content: Content, deadline: float) -> tuple[int, bytes]:
        """Status and body, read under one deadline for the whole answer: the client's timeout is per read, so a
        model that trickles its answer byte by byte would otherwise hold the upload for as long as it likes."""
        media_kinds = {a.value for a in self._accepts}
        if content.media is not None and content.kind is not None and content.kind.value in media_kinds:
            with content.media.open("rb") as f:
                request = self._client.build_request(
                    "POST", self.url, data={"kind": content.kind.value, "text": content.text},
                    files={"media": ("upload", f, "application/octet-stream")})
                return self._read(request, deadline)
        return self._read(self._client.build_request("POST", self.url, json={"text": content.text}), deadline)

    def _read(self, request: httpx.Request, deadline: float) -> tuple[int, bytes]:
        response = self._client.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise ClassifierFailed(f"answered more than {MAX_ANSWER_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer took too long", request=request)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the answer took too long", request=request)
            return response.status_code, bytes(body)
        finally:
            response.close()

    def _scores_of(self, body: bytes) -> dict[str, float]:
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ClassifierFailed("answered something that is not JSON") from None
        scores = parsed.get("scores") if isinstance(parsed, dict) else None
        if not isinstance(scores, dict):
            raise ClassifierFailed('answered JSON without a "scores" object')
        out: dict[str, float] = {}
        for name, value in scores.items():
            if name not in self._scores:
                raise ClassifierFailed(f"answered an unknown score {str(name)[:64]!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or not 0.0 <= value <= 1.0:
                raise ClassifierFailed(f"answered {name} = {str(value)[:32]}, not a number between 0 and 1")
            out[name] = float(value)
        return out
