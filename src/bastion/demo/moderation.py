"""The demo's moderation step: sample uploads judged before publication, and a moderator deciding the held one.

Runs the same services as ``POST /v1/content`` and the review console, on the demo's banks and the default policy.
Content ids are fixed, so a second run shows the stored verdicts (intake is idempotent) and decides nothing twice.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageEnhance
from rich.console import Console
from rich.table import Table

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.clock import SystemClock
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.hashing.services import hash_path
from bastion.matching.matcher import Matcher
from bastion.moderation import decisions, intake
from bastion.moderation.interfaces import SubmissionConflict
from bastion.moderation.kernel import Moderation
from bastion.moderation.policy import DEFAULT_POLICY_PATH, Action, ContentType, PolicyFile

PLATFORM = Principal("cli", 0, "demo-platform", Role.PLATFORM)
MODERATOR = Principal("user", 0, "demo-moderator", Role.MODERATOR)


def _contrasted_copy(known: Path, workdir: Path) -> Path:
    """A known image with its contrast pushed: near the banked hash, but not close enough to remove unseen."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "photo_contrast.jpg"
    with Image.open(known) as img:
        ImageEnhance.Contrast(img).enhance(2.2).save(out, quality=80)
    return out


def run_moderation_demo(db: Database, matcher: Matcher, known: dict[str, Path], uploads: Path, settings: Settings,
                        *, console: Console) -> None:
    mod = Moderation(db, matcher, PolicyFile(settings.policy_path or DEFAULT_POLICY_PATH), SystemClock(),
                     sealer=settings.media_sealer())
    samples = [
        ("demo-photo-resized", uploads / "photo_resized.jpg", ContentType.IMAGE, ""),
        ("demo-photo-contrast", _contrasted_copy(known["photo4"], uploads.parent / "intake"), ContentType.IMAGE, ""),
        ("demo-holiday", uploads / "holiday.jpg", ContentType.IMAGE, "Holiday at the lake"),
        ("demo-video", uploads / "video_reencoded.mp4", ContentType.VIDEO, ""),
        ("demo-csam-standin", uploads / "reupload_of_known_csam_standin.png", ContentType.IMAGE, ""),
    ]
    console.print("\n[bold]Moderation[/bold]: uploads judged before publication (POST /v1/content) ...")
    # the answer as the platform reads it: what was found, never the bank, rule or distance (the scan above has
    # those); the case a held upload waits in is in the narration below, so the reason has room at 80 columns
    table = Table("content", "verdict: status", "why (as the platform is told)",
                  title=f"intake under policy {mod.policy.label}")
    held: list[int] = []
    for content_id, path, content_type, text in samples:
        media = hash_path(path, variants=matcher.wants_variants(), picture_px=intake.picture_px(mod))
        sub = intake.Submission(content_id=content_id, account_id="demo-account-1", uploader_age=26,
                                account_country="BE", content_type=content_type, text=text)
        try:
            result = intake.submit(mod, sub, media, actor=PLATFORM, media_path=path)
        except SubmissionConflict as exc:  # a re-run re-encodes the video: other bytes under the same id
            table.add_row(content_id, f"{exc.verdict.value}: 409", "submitted before with other bytes")
            continue
        if result.case_id is not None and result.verdict.value == "review":
            held.append(result.case_id)
        table.add_row(content_id, f"{result.verdict.value}: {result.status.value}",
                      result.reasons[0] if result.reasons else "nothing found")
    console.print(table)
    for case_id in held:
        case = decisions.claim_next(mod, "terrorism", MODERATOR)
        if case is None or case.id != case_id:
            continue
        decided = decisions.decide(mod, case.id, decisions.ReviewDecision(
            violation=True, actions=[Action.REMOVE, Action.STRIKE], note="Known propaganda with altered contrast."),
            reviewer=MODERATOR)
        console.print(f"a moderator decided case {case.id}: the content is now {decided['status']} "
                      f"({case.content_id}, held above); "
                      f"statement of reasons {decided['statement_puid']} issued, appeal path open (POST /v1/appeals)")

