"""The classifiers' tables: reference texts to compare uploads with, and models trained on moderators' decisions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, Float, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bastion.core.db import Base, UTCDateTime


class CorpusText(Base):
    """A known text of a category (a propaganda passage, say). Banks keep only hashes of texts; similarity needs
    the words, so the reference texts live here, added by ``bastion classifier corpus add``."""

    __tablename__ = "classifier_corpus"
    __table_args__ = (UniqueConstraint("category", "digest", name="uq_classifier_corpus_text"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    category: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    #: SHA-256 of the text: the same passage is stored once per category.
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200), default="")
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class TrainedModel(Base):
    """One version of a model trained on decisions of one category. Rows are never changed: a new training is a
    new version, and every replica scores with the highest version of each category."""

    __tablename__ = "classifier_models"
    __table_args__ = (UniqueConstraint("category", "version", name="uq_classifier_models_version"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    category: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    #: How texts became numbers: ``ngrams`` (hashed word and character n-grams) or ``minilm`` (sentence embeddings).
    feature_kind: Mapped[str] = mapped_column(String(32))
    dimensions: Mapped[int] = mapped_column(Integer)
    #: Little-endian float32 weights, one per dimension.
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    bias: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    #: Held-out precision, recall, f1, support and the confusion counts, plus the split's sizes.
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    decisions: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    trained_by: Mapped[str] = mapped_column(String(200))
