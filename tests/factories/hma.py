"""A client of HMA's REST API written from HMA's own routes (OpenMediaMatch's blueprints ``hashing``, ``matching``,
``curation``): the requests an HMA deployment's callers send, with HMA's paths, query parameters, multipart part
names and JSON bodies, plus Bastion's bearer token. Tests point it at a live Bastion to prove the drop-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx


class HmaClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.http.close()

    # hashing blueprint (/h)
    def hash_file(self, content_type: str, path: Path, **params: str) -> httpx.Response:
        with path.open("rb") as f:
            return self.http.post("/h/hash", params=params, files={content_type: (path.name, f)})

    def hash_url(self, url: str, **params: str) -> httpx.Response:
        return self.http.get("/h/hash", params={"url": url, **params})

    # matching blueprint (/m)
    def raw_lookup(self, signal_type: str, signal: str, **params: str) -> httpx.Response:
        return self.http.get("/m/raw_lookup", params={"signal_type": signal_type, "signal": signal, **params})

    def lookup_signal(self, signal_type: str, signal: str, **params: str) -> httpx.Response:
        return self.http.get("/m/lookup", params={"signal_type": signal_type, "signal": signal, **params})

    def lookup_url(self, url: str, **params: str) -> httpx.Response:
        return self.http.get("/m/lookup", params={"url": url, **params})

    def lookup_file(self, content_type: str, path: Path, **params: str) -> httpx.Response:
        with path.open("rb") as f:
            return self.http.post("/m/lookup", params=params, files={content_type: (path.name, f)})

    def index_status(self, **params: str) -> httpx.Response:
        return self.http.get("/m/index/status", params=params)

    def compare(self, pairs: dict[str, Any]) -> httpx.Response:
        return self.http.post("/m/compare", json=pairs)

    # curation blueprint (/c)
    def banks(self) -> httpx.Response:
        return self.http.get("/c/banks")

    def bank(self, name: str) -> httpx.Response:
        return self.http.get(f"/c/bank/{name}")

    def create_bank(self, name: str, **fields: Any) -> httpx.Response:
        return self.http.post("/c/banks", json={"name": name, **fields})

    def update_bank(self, bank: str, **fields: Any) -> httpx.Response:
        return self.http.put(f"/c/bank/{bank}", json=fields)

    def add_content_file(self, bank: str, content_type: str, path: Path) -> httpx.Response:
        with path.open("rb") as f:
            return self.http.post(f"/c/bank/{bank}/content", files={content_type: (path.name, f)})

    def add_content_url(self, bank: str, url: str, metadata: dict[str, Any] | None = None) -> httpx.Response:
        body = {"metadata": metadata} if metadata is not None else None
        return self.http.post(f"/c/bank/{bank}/content", params={"url": url}, json=body)

    def add_signals(self, bank: str, signals: dict[str, str]) -> httpx.Response:
        return self.http.post(f"/c/bank/{bank}/signal", json=signals)

    def content(self, bank: str, content_id: int, include_signals: bool = False) -> httpx.Response:
        return self.http.get(f"/c/bank/{bank}/content/{content_id}",
                             params={"include_signals": "true" if include_signals else "false"})

    def update_content(self, bank: str, content_id: int, disable_until_ts: int) -> httpx.Response:
        return self.http.put(f"/c/bank/{bank}/content/{content_id}", json={"disable_until_ts": disable_until_ts})

    def delete_content(self, bank: str, content_id: int) -> httpx.Response:
        return self.http.delete(f"/c/bank/{bank}/content/{content_id}")

    def exchanges(self) -> httpx.Response:
        return self.http.get("/c/exchanges")
