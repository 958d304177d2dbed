"""The removal-order step of ``bastion demo``: hub and platform on loopback, one order executed and answered."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.demo.orders import run_orders_demo, timeline
from bastion.moderation.models import ContentItem


def test_the_demo_order_is_executed_and_its_feedback_shown(db: Database, settings: Settings, tmp_path: Path) -> None:
    with (tmp_path / "out.txt").open("w") as sink:
        quiet = Console(file=sink, width=200)
        view = run_orders_demo(db, tmp_path, settings, console=quiet)
    assert view["state"] == "executed" and view["answer"]["action"] == "removed"
    text = (tmp_path / "out.txt").read_text()
    assert "Annex II feedback at the hub" in text and "order executed and answered in" in text
    assert "they stop when it ends" in " ".join(text.split())  # its URLs are not left looking usable
    assert text.index("received (contact point's clock)") < text.index("acknowledged by the contact point")
    with db.read() as session:
        item = session.scalar(select(ContentItem).where(ContentItem.content_id.like("demo-order-%")))
        assert item is not None and item.status == "removed"
    with (tmp_path / "again.txt").open("w") as sink:
        quiet = Console(file=sink, width=200)
        again = run_orders_demo(db, tmp_path, settings, console=quiet)  # a second run: a fresh hub
    assert again["state"] == "executed" and again["hub_reference"] != view["hub_reference"]


def test_the_timeline_reads_in_the_order_things_happened() -> None:
    view = {"issued_at": "2026-01-01T10:00:00.100000", "sent_at": "2026-01-01T10:00:00.200000",
            "acknowledged_at": "2026-01-01T10:00:00.600000", "received_at": "2026-01-01T10:00:00.300000",
            "action_at": "2026-01-01T10:00:00.400000", "answered_at": None}
    assert [label for label, _ in timeline(view)] == [
        "issued by the authority", "sent by the hub", "received (contact point's clock)", "content removed",
        "acknowledged by the contact point", "Annex II feedback at the hub"]
    assert timeline(view)[-1] == ("Annex II feedback at the hub", "-")  # not yet: last, with a dash

