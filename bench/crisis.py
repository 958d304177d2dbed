"""A crisis surge: edited re-uploads of the crisis's known image through POST /v1/content, over real HTTP.

A uvicorn server (one process, the app as deployed) is started on loopback on a temporary SQLite database. A crisis
is activated over the API (``POST /v1/crises``) and its known material handed in as a file
(``/v1/crises/{id}/material-file``: the image's hashes and its border crops go into the dihedral crisis bank).
Then ``--uploads`` re-uploads, each a different content id, cycle through ``--variants`` edited copies of the image,
each edit drawn at random: re-encoded (JPEG quality 35-90), borders cropped (0.5-9% a side), mirrored, or several
of these at once. The bench counts how many were blocked and how many published (the goal: none), the client-side
p50/p99 latency of the whole request, and uploads per server CPU-second (the "per core" figure: a surge of 10,000
uploads a minute is 167 a second).

Baseline, in the same run on the same server: uploads of unrelated images (published), the ordinary intake path.

    python bench/crisis.py [--uploads 600] [--variants 60] [--clients 4] [--kind image|video]

With ``--kind video`` the known material is a 6-second 320x240 H.264 video and each edit a re-encode at 300 kb/s,
cropped and/or mirrored (no quality knob). Ends with one JSON line of figures.
"""

from __future__ import annotations

# isort: off
import bastion  # noqa: F401 - first: it limits BLAS threads before numpy loads (see bastion/__init__.py)
# isort: on
import argparse
import io
import json
import random
import sys
import tempfile
from pathlib import Path

import httpx
from PIL import Image, ImageOps

from bastion.core.auth import services as auth
from bastion.core.auth.roles import Role
from bastion.core.db import Database, migrate
from bastion.core.sealing import new_key
from bastion.demo.media import make_image, make_video, read_frames, write_video
from intake import cpu_seconds, start_server, upload_all
from stats import percentile


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def edited(original: Path, n: int, seed: int = 3) -> list[tuple[str, bytes, str]]:
    """``n`` edited copies: (file name, bytes, what was done)."""
    rng = random.Random(seed)
    image = Image.open(original).convert("RGB")
    w, h = image.size
    copies = []
    for i in range(n):
        edit, done = image, []
        if rng.random() < 0.6:
            f = rng.uniform(0.005, 0.09)
            edit = edit.crop((int(w * f), int(h * f), w - int(w * f), h - int(h * f)))
            done.append(f"crop {f:.1%}")
        if rng.random() < 0.5:
            edit = ImageOps.mirror(edit)
            done.append("mirror")
        quality = rng.randint(35, 90)
        done.append(f"q{quality}")
        out = io.BytesIO()
        edit.save(out, "JPEG", quality=quality)
        copies.append((f"edit{i}.jpg", out.getvalue(), " ".join(done)))
    return copies


def edited_videos(original: Path, n: int, work: Path, seed: int = 3) -> list[tuple[str, bytes, str]]:
    """``n`` edited copies of a video: cropped, mirrored, or both, each re-encoded."""
    import numpy as np

    rng = random.Random(seed)
    copies = []
    for i in range(n):
        f = rng.uniform(0.005, 0.07) if rng.random() < 0.6 else 0.0
        mirror = rng.random() < 0.5

        def edit(frame: np.ndarray, f: float = f, mirror: bool = mirror) -> np.ndarray:  # type: ignore[type-arg]
            h, w = frame.shape[:2]
            out = frame[int(h * f):h - int(h * f), int(w * f):w - int(w * f)]
            out = out[:, ::-1] if mirror else out
            return np.ascontiguousarray(out[: out.shape[0] // 2 * 2, : out.shape[1] // 2 * 2])

        path = write_video(work / f"edit{i}.mp4", (edit(x) for x in read_frames(original)), bit_rate=300_000)
        copies.append((path.name, path.read_bytes(), f"crop {f:.1%}" + (" mirror" if mirror else "")))
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--uploads", type=int, default=600)
    parser.add_argument("--variants", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--kind", choices=["image", "video"], default="image")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bastion-crisis-"))
    url = f"sqlite:///{work / 'bench.db'}"
    migrate(url)
    db = Database(url)
    if args.kind == "video":
        known = make_video(work / "attack.mp4", seed=4242, seconds=6, size=(320, 240))
        copies = edited_videos(known, args.variants, work)
        unrelated = [make_video(work / f"other{i}.mp4", seed=9000 + i, seconds=6, size=(320, 240))
                     for i in range(20)]
    else:
        known = make_image(work / "attack.jpg", seed=4242, size=(960, 720))
        copies = edited(known, args.variants)
        unrelated = [make_image(work / f"other{i}.jpg", seed=9000 + i, size=(960, 720)) for i in range(20)]
    platform = auth.create_token(db, role=Role.PLATFORM, name="bench", actor="bench")
    admin = auth.create_token(db, role=Role.ADMIN, name="bench", actor="bench")
    server, base = start_server(url, work, new_key())
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as client:
            crisis = client.post("/v1/crises", json={"protocol": "gifct_cip", "level": "2", "reference": "BENCH-1",
                                                     "countries": ["FR"]}).json()
            with known.open("rb") as f:
                banked = client.post(f"/v1/crises/{crisis['id']}/material-file",
                                     files={"media": (known.name, f, "application/octet-stream")}).json()
            log(f"crisis {crisis['id']} active, {len(banked['entry_ids'])} hashes banked")
        headers = {"Authorization": f"Bearer {platform}"}
        images = [(name, body) for name, body, _ in copies]
        upload_all(base, headers, images, min(60, args.uploads), args.clients, "warm", args.kind)
        cpu_before = cpu_seconds(server.pid)
        latencies, verdicts, wall = upload_all(base, headers, images, args.uploads, args.clients, "surge",
                                               args.kind)
        surge_cpu = cpu_seconds(server.pid) - cpu_before
        plain = [(p.name, p.read_bytes()) for p in unrelated]
        cpu_before = cpu_seconds(server.pid)
        base_latencies, base_verdicts, _ = upload_all(base, headers, plain, min(300, args.uploads), args.clients,
                                                      "plain", args.kind)
        base_cpu = cpu_seconds(server.pid) - cpu_before
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as client:
            detail = client.get(f"/v1/crises/{crisis['id']}").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    if len(latencies) != args.uploads:
        raise SystemExit(f"only {len(latencies)} of {args.uploads} uploads were answered")
    per_cpu = len(latencies) / surge_cpu
    figures = {
        "kind": args.kind, "uploads": args.uploads, "variants": args.variants, "clients": args.clients,
        "blocked": verdicts.get("block", 0), "held": verdicts.get("review", 0), "published": verdicts.get("allow", 0),
        "timeline_blocked": detail["blocked"], "timeline_variants_found": detail["variants_found"],
        "uploads_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "uploads_per_server_cpu_s": round(per_cpu, 1),
        "cores_for_10000_per_minute": round(10_000 / 60 / per_cpu, 2),
        "baseline_unrelated_per_server_cpu_s": round(len(base_latencies) / base_cpu, 1),
        "baseline_p99_ms": round(percentile(base_latencies, 0.99) * 1000, 2),
        "baseline_verdicts": base_verdicts,
        "ratio_surge_cost_to_baseline": round((surge_cpu / len(latencies)) / (base_cpu / len(base_latencies)), 2),
    }
    log(f"surge: {figures['blocked']} of {args.uploads} edited re-uploads blocked, {figures['published']} published; "
        f"p99 {figures['p99_ms']} ms; {figures['uploads_per_server_cpu_s']} uploads per server CPU-second "
        f"({figures['cores_for_10000_per_minute']} cores for 10,000 a minute)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
