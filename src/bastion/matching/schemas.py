"""The banks and matching API's answers, as pydantic models: ``/openapi.json`` documents every field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from bastion.hashing.api import SignalAnswer


class MatchAnswer(BaseModel):
    bank: str
    entry_id: int
    signal_type: str
    category: str
    distance: int = Field(description="0 for an exact match; for pdq, the Hamming distance")
    variant: bool = Field(description="matched a flipped or rotated copy (dihedral banks)")


class MatchResult(BaseModel):
    signals: list[SignalAnswer] = Field(description="what the file was hashed to, or the signal sent")
    matches: list[MatchAnswer] = Field(description="bank entries within their thresholds (none: no match)")


class BankAnswer(BaseModel):
    name: str
    description: str
    enabled: bool
    restricted: bool
    dihedral: bool
    thresholds: dict[str, int]
    entries: int
    by_signal_type: dict[str, int]
    created_at: str
    created_by: str


class BanksAnswer(BaseModel):
    banks: list[BankAnswer]


class EntryAnswer(BaseModel):
    id: int
    bank: str
    signal_type: str
    value: str
    category: str
    source: str
    note: str
    added_by: str
    added_at: str


#: ``POST /v1/match`` reads its body itself (a file, or one signal as JSON): this documents both.
MATCH_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "image, video or text file"},
        "bank": {"type": "array", "items": {"type": "string"}, "description": "only these banks"},
    }}},
    "application/json": {"schema": {"type": "object", "required": ["signal_type", "value"], "properties": {
        "signal_type": {"type": "string", "description": "a signal type name, e.g. pdq"},
        "value": {"type": "string", "description": "the signal value, e.g. 64 hex digits for pdq"},
        "banks": {"type": "array", "items": {"type": "string"}, "description": "only these banks"},
    }}},
}}}
