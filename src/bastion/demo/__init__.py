"""``bastion demo``: seed sample banks, make sample uploads, scan them and show what matched.

Everything is synthetic: the "known" images are generated photographs, the "CSAM_KNOWN" bank holds hashes of one of
them as a stand-in, and the propaganda text is invented. Nothing here is real material.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps
from rich.console import Console
from rich.table import Table

from bastion.core.auth.roles import Role
from bastion.core.auth.services import Principal
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.demo.media import make_image, make_video, video_frames, write_video
from bastion.demo.moderation import run_moderation_demo
from bastion.demo.orders import run_orders_demo
from bastion.hashing.services import hash_path
from bastion.matching import services as banks
from bastion.matching.interfaces import BankExists
from bastion.matching.matcher import Matcher
from bastion.matching.scan import FileResult, ScanSummary, scan_files, walk

ACTOR = Principal("cli", 0, "demo", Role.ADMIN)

MANIFESTO = (
    "The Grey Dawn Front calls on every follower to rise against the cities of the plain. "
    "Our martyrs show the way: strike the markets, strike the stations, strike without mercy. "
    "Whoever hesitates betrays the cause. Share this message with every brother and sister, "
    "gather in the old places and wait for the signal. The day of reckoning is near."
)
EDITED_POST = (
    "the grey dawn front calls on EVERY follower to rise against the cities of the plain!!! "
    "our martyrs show the way - strike the markets, strike the stations, strike without mercy. "
    "whoever hesitates, betrays the cause; share this message with every brother and sister, "
    "gather in the old places and wait for the signal... The day of reckoning is near.\n"
    "More at HTTPS://Grey-Dawn.example/Join?utm_source=post&utm_medium=share#top"
)
CLEAN_POST = "Lovely morning at the lake today. The ducks were back and the coffee was excellent."
KNOWN_URL = "https://grey-dawn.example/Join"


def _known_media(workdir: Path) -> dict[str, Path]:
    known = workdir / "known"
    known.mkdir(parents=True, exist_ok=True)
    paths = {f"photo{i}": make_image(known / f"photo{i}.jpg", seed=100 + i, size=(1024, 768)) for i in range(1, 6)}
    paths["video"] = make_video(known / "video.mp4", seed=7, seconds=6.0, size=(192, 144))
    return paths


def _uploads(workdir: Path, known: dict[str, Path]) -> Path:
    uploads = workdir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    with Image.open(known["photo1"]) as img:
        img.resize((img.width // 2, img.height // 2)).save(uploads / "photo_resized.jpg", quality=85)
    with Image.open(known["photo2"]) as img:
        img.save(uploads / "photo_recompressed.jpg", quality=35)
    with Image.open(known["photo3"]) as img:
        ImageOps.mirror(img).save(uploads / "photo_mirrored.jpg", quality=90)
    with Image.open(known["photo5"]) as img:
        img.save(uploads / "reupload_of_known_csam_standin.png")
    make_image(uploads / "holiday.jpg", seed=999, size=(1024, 768))
    write_video(uploads / "video_reencoded.mp4", video_frames(7, 6.0, (192, 144)), size=(160, 120),
                bit_rate=150_000)
    (uploads / "post_edited.txt").write_text(EDITED_POST + "\n")
    (uploads / "post_clean.txt").write_text(CLEAN_POST + "\n")
    return uploads


def _signals(path: Path) -> dict[str, str]:
    return {s.signal_type: s.value for s in hash_path(path).signals}


def _seed(db: Database, known: dict[str, Path]) -> bool:
    """Create the demo banks once; returns False when they exist already."""
    try:
        banks.create_bank(db, "TERRORIST_CONTENT", actor=ACTOR, dihedral=True,
                          description="Demo: known terrorist content (synthetic stand-ins)")
    except BankExists:
        return False
    banks.create_bank(db, "CSAM_KNOWN", actor=ACTOR, restricted=True,
                      description="Demo: known child sexual abuse material (hashes of a synthetic stand-in)")
    for name in ("photo1", "photo2", "photo3", "photo4"):
        s = _signals(known[name])
        for signal_type in ("pdq", "sha256"):
            banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse(
                signal_type, s[signal_type], "terrorist_content", "demo", f"known {name}"), actor=ACTOR)
    video = _signals(known["video"])
    banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse(
        "video_pdq", video["video_pdq"], "terrorist_content", "demo", "known video"), actor=ACTOR)
    banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse(
        "text", MANIFESTO, "terrorist_content", "demo", "Grey Dawn manifesto"), actor=ACTOR)
    banks.add_entry(db, "TERRORIST_CONTENT", banks.NewEntry.parse(
        "url", KNOWN_URL, "terrorist_content", "demo", "recruitment page"), actor=ACTOR)
    csam = _signals(known["photo5"])
    for signal_type in ("pdq", "md5"):
        banks.add_entry(db, "CSAM_KNOWN", banks.NewEntry.parse(
            signal_type, csam[signal_type], "csam_known", "demo", "synthetic stand-in"), actor=ACTOR)
    return True


#: What ``d=`` means in the tables, said once: a new operator has not met a PDQ distance before.
DISTANCE_LEGEND = (
    "d = distance to the banked hash: pdq and video_pdq count differing bits of 256 (0 = the same picture; "
    "a match up to 31 by default), text is the percentage of differing five-letter shingles (match up to 30), "
    "md5, sha256 and url match only when equal (d=0)."
)


def run_demo(db: Database, workdir: Path, *, console: Console,
             load_matcher: Callable[[Database], Matcher]) -> ScanSummary:
    """Run every step, narrating on ``console``: one stream, so tables and words stay in order when redirected."""
    console.print(f"[bold]Bastion demo[/bold]: making sample media in {workdir}/ ...")
    known = _known_media(workdir)
    uploads = _uploads(workdir, known)
    if _seed(db, known):
        console.print("seeded banks TERRORIST_CONTENT and CSAM_KNOWN")
    else:
        console.print("demo banks exist already; scanning against them")
    matcher = load_matcher(db)
    results: list[FileResult] = []
    summary = scan_files(list(walk([uploads])), matcher, on_file=results.append)
    console.print(scan_table(results))
    console.print(summary_line(summary))
    console.print(DISTANCE_LEGEND)
    run_moderation_demo(db, matcher, known, uploads, Settings.from_env(), console=console)
    run_orders_demo(db, workdir, Settings.from_env(), console=console)
    console.print(NEXT_STEPS)
    return summary


def scan_table(results: list[FileResult]) -> Table:
    """One row per upload, one line per match: bank, signal type and distance (the category is the bank's)."""
    table = Table("upload", "kind", "matches (bank, signal, distance)", title="scan of sample uploads")
    for r in results:
        found = "\n".join(f"{m.bank} {m.signal_type} d={m.distance}{' mirrored' if m.variant else ''}"
                          for m in r.matches) or "-"
        table.add_row(r.path.name, r.signals.kind.value if r.signals else "?", found)
    return table


def summary_line(summary: ScanSummary) -> str:
    by_bank = ", ".join(f"{name} {n}" for name, n in sorted(summary.by_bank.items()))
    return (f"{summary.files} files scanned: {summary.matched} matched ({by_bank or 'none'}), "
            f"{summary.unreadable} unreadable")


#: Said once, at the end, so that no hint is lost between tables.
NEXT_STEPS = """
[bold]Next[/bold]
  bastion serve                              the API and console on port 8000
  bastion token create --role platform       a token for /v1/content, /v1/match
  bastion user create mona --role moderator  a login for the review queues
  (API reference: http://127.0.0.1:8000/docs once bastion serve runs)
"""
