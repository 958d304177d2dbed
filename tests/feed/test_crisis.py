"""Crisis mode: the state table, the derived policy, and a crisis end to end over HTTP (edited re-uploads blocked,
livestreams excluded, cases raised, every step on the timeline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from bastion.core.auth.roles import Role
from bastion.core.config import Settings
from bastion.core.db import Database
from bastion.feed.crisis import (
    ActiveCrisis,
    CrisisAdjuster,
    CrisisChange,
    CrisisState,
    InvalidCrisisTransition,
    bank_name_for,
    crisis_policy,
    next_state,
)
from bastion.moderation.policy import DEFAULT_POLICY_PATH, Verdict, load_policy
from bastion.web.app import create_app
from tests.factories.media import make_image
from tests.feed.conftest import Header, feed, pdq, until, upload

A, E = CrisisState.ACTIVE, CrisisState.ENDED


@pytest.mark.parametrize(("current", "change", "result"), [
    (None, CrisisChange.ACTIVATE, A),
    (A, CrisisChange.ACTIVATE, None),
    (E, CrisisChange.ACTIVATE, None),  # a crisis is declared once; a new one takes a new row
    (A, CrisisChange.BANK_MATERIAL, A),
    (E, CrisisChange.BANK_MATERIAL, None),
    (A, CrisisChange.BANK_PERPETRATOR_CONTENT, A),
    (E, CrisisChange.BANK_PERPETRATOR_CONTENT, None),
    (A, CrisisChange.REPORT_THREAT, A),
    (E, CrisisChange.REPORT_THREAT, None),
    (A, CrisisChange.NOTE, A),
    (E, CrisisChange.NOTE, E),  # a post-mortem note
    (None, CrisisChange.NOTE, None),
    (A, CrisisChange.DEACTIVATE, E),
    (E, CrisisChange.DEACTIVATE, None),
    (None, CrisisChange.DEACTIVATE, None),
])
def test_next_state(current: CrisisState | None, change: CrisisChange, result: CrisisState | None) -> None:
    if result is None:
        with pytest.raises(InvalidCrisisTransition):
            next_state(current, change)
    else:
        assert next_state(current, change) is result


def _crisis(i: int = 1, factor: float = 0.5, boost: int = 2) -> ActiveCrisis:
    return ActiveCrisis(i, f"ECP-{i}", ("FR",), ("terrorist_content",), f"CRISIS_ECP_{i}", True, factor, boost)


def test_the_crisis_policy_lowers_review_thresholds_and_blocks_bank_matches() -> None:
    policy = load_policy(DEFAULT_POLICY_PATH)
    derived = crisis_policy(policy, [_crisis()])
    assert derived.label == f"{policy.label}+crisis-1"
    first = derived.rules[0]
    assert (first.name, first.verdict, first.when.bank_match and first.when.bank_match.banks) == \
        ("crisis-1-known-material", Verdict.BLOCK, ["CRISIS_ECP_1"])
    before = policy.rule("terror-text-review").when.classifier
    after = derived.rule("terror-text-review").when.classifier
    assert before and after and after.min_score == pytest.approx(before.min_score * 0.5)
    # other categories, blocking rules and shadow rules keep their thresholds
    assert derived.rule("violent-extremism-review") == policy.rule("violent-extremism-review")
    assert derived.rule("terror-text-autoblock") == policy.rule("terror-text-autoblock")
    assert crisis_policy(policy, []) is policy


def test_the_adjuster_caches_and_raises_severity() -> None:
    policy = load_policy(DEFAULT_POLICY_PATH)
    adjuster = CrisisAdjuster()
    assert adjuster.policy(policy) is policy and adjuster.severity("terrorist_content", 2) == 2
    adjuster.update((_crisis(),))
    assert adjuster.policy(policy) is adjuster.policy(policy)
    assert adjuster.severity("terrorist_content", 2) == 4 and adjuster.severity("hate_speech", 2) == 2


def test_bank_name_for() -> None:
    assert bank_name_for("ECP-2026/03") == "CRISIS_ECP_2026_03"


def _edits(original: Path, tmp: Path) -> list[Path]:
    """A surge's edits: re-encoded, borders cropped, mirrored."""
    image = Image.open(original).convert("RGB")
    w, h = image.size
    edits = {"reencoded": image, "cropped": image.crop((w // 25, h // 25, w - w // 25, h - h // 25)),
             "mirrored": ImageOps.mirror(image)}
    paths = []
    for name, edited in edits.items():
        path = tmp / f"{name}.jpg"
        edited.save(path, quality=70)
        paths.append(path)
    return paths


@pytest.fixture
def crisis_client(settings: Settings, db: Database) -> TestClient:
    configured = Settings(**{**settings.__dict__, "orders_europol_url": "https://europol.example/tco"})
    with TestClient(create_app(configured, db=db)) as c:
        yield c  # type: ignore[misc]


def test_a_crisis_end_to_end(crisis_client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    client, senior, analyst = crisis_client, auth_header(Role.SENIOR_MODERATOR), auth_header(Role.ANALYST)
    video = make_image(tmp_path / "attack.jpg", seed=71, size=(640, 480))
    upload(client, auth_header, "live-fr", live="true")
    upload(client, auth_header, "live-de", live="true", account_country="DE")
    upload(client, auth_header, "post-fr")
    body = {"protocol": "gifct_cip", "level": "2", "reference": "CIP-2026-7", "countries": ["FR"],
            "title": "attack livestreamed", "material": [{"signal_type": "pdq", "value": pdq(video)}]}
    assert client.post("/v1/crises", json=body, headers=analyst).status_code == 403
    r = client.post("/v1/crises", json=body, headers=senior)
    assert r.status_code == 201, r.text
    crisis = r.json()
    assert (crisis["state"], crisis["bank"], crisis["countries"]) == ("active", "CRISIS_CIP_2026_7", ["FR"])
    assert client.post("/v1/crises", json=body, headers=senior).status_code == 409  # active already

    # the feed: livestreams from France are out, the rest stays
    answer = feed(client, auth_header, {"account_id": "v", "age": 30}, ["live-fr", "live-de", "post-fr"])
    assert answer["eligible"] == ["live-de", "post-fr"]
    assert answer["excluded"] == [{"content_id": "live-fr", "reasons": ["crisis_exclusion"]}]

    # the file of the known material: its border crops are banked too
    with video.open("rb") as f:
        r = client.post(f"/v1/crises/{crisis['id']}/material-file", files={"media": ("attack.jpg", f, "image/jpeg")},
                        headers=senior)
    assert r.status_code == 200, r.text
    assert len(r.json()["entry_ids"]) >= 5 and r.json()["skipped"]  # the original's PDQ is banked already

    # edited re-uploads are blocked at upload, none published
    for i, path in enumerate([video, *_edits(video, tmp_path)]):
        assert upload(client, auth_header, f"re-{i}", path)["status"] == "blocked", path.name

    # an imminent threat to life goes the Art. 14(5) way and onto the timeline; a note too
    threat = client.post(f"/v1/crises/{crisis['id']}/threats", headers=senior,
                         json={"content_id": "live-fr", "explanation": "attacker announces a second target"})
    assert threat.status_code == 202, threat.text
    assert threat.json()["sent_to"] == ["Europol"]
    assert client.post(f"/v1/crises/{crisis['id']}/notes", json={"text": "hash shared with partners"},
                       headers=senior).status_code == 204

    detail = client.get(f"/v1/crises/{crisis['id']}", headers=analyst).json()
    assert detail["blocked"] == 4 and detail["variants_found"] >= 1
    assert [e["kind"] for e in detail["events"]] == ["crisis.activated", "crisis.material_banked",
                                                     "crisis.material_banked", "crisis.threat_reported",
                                                     "crisis.note"]
    assert any("livestreams from FR" in rule for rule in detail["rules"])

    ended = client.post(f"/v1/crises/{crisis['id']}/deactivate", json={"note": "over"}, headers=senior)
    assert ended.status_code == 200 and ended.json()["state"] == "ended"
    assert client.post(f"/v1/crises/{crisis['id']}/deactivate", json={}, headers=senior).status_code == 409
    assert until(lambda: feed(client, auth_header, {"account_id": "v", "age": 30}, ["live-fr"])["eligible"])
    assert [c["state"] for c in client.get("/v1/crises", headers=analyst).json()] == ["ended"]


def test_perpetrator_content_confirmed_by_a_moderator_is_banked(
        crisis_client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    client, senior = crisis_client, auth_header(Role.SENIOR_MODERATOR)
    crisis = client.post("/v1/crises", json={"protocol": "internal", "reference": "INT-1", "countries": ["BE"],
                                             "bank_confirmed": False}, headers=senior).json()
    clip = make_image(tmp_path / "clip.jpg", seed=72, size=(640, 480))
    upload(client, auth_header, "clip-1", clip)
    path = f"/v1/crises/{crisis['id']}/perpetrator-content"
    refused = client.post(path, json={"content_id": "clip-1"}, headers=senior)
    assert refused.status_code == 422  # no moderator confirmed it
    notice = client.post("/v1/notices", json={"content_id": "clip-1", "category": "terrorist_content",
                                              "explanation": "perpetrator's video", "notifier": "u"},
                         headers=auth_header(Role.PLATFORM))
    assert notice.status_code == 201
    queue = client.get("/v1/queues", headers=auth_header(Role.MODERATOR)).json()["queues"]
    mod = auth_header(Role.MODERATOR)
    case = client.post("/v1/queues/terrorism/claim", headers=mod).json()
    assert case["severity"] >= 2 and any(q["name"] == "terrorism" for q in queue)  # raised by the crisis
    assert client.post(f"/v1/cases/{case['id']}/decision", json={"violation": True, "actions": ["remove"]},
                       headers=mod).status_code == 200
    banked = client.post(path, json={"content_id": "clip-1"}, headers=senior)
    assert banked.status_code == 200, banked.text
    assert banked.json()["entry_ids"]
    assert upload(client, auth_header, "clip-2", clip)["status"] == "blocked"


def test_removals_confirmed_during_a_crisis_are_banked_by_the_worker(
        crisis_client: TestClient, auth_header: Header, tmp_path: Path) -> None:
    client, senior = crisis_client, auth_header(Role.SENIOR_MODERATOR)
    crisis = client.post("/v1/crises", json={"protocol": "eu_crisis_protocol", "reference": "ECP-9",
                                             "countries": ["DE"]}, headers=senior).json()
    clip = make_image(tmp_path / "clip.jpg", seed=73, size=(640, 480))
    other = make_image(tmp_path / "other.jpg", seed=74, size=(640, 480))
    upload(client, auth_header, "clip-1", clip)
    upload(client, auth_header, "other-1", other)
    p, mod = auth_header(Role.PLATFORM), auth_header(Role.MODERATOR)
    for content_id, category in (("clip-1", "terrorist_content"), ("other-1", "hate_speech")):
        assert client.post("/v1/notices", json={"content_id": content_id, "category": category,
                                                "explanation": "x", "notifier": "u"}, headers=p).status_code == 201
    for queue in ("terrorism", "general"):
        case = client.post(f"/v1/queues/{queue}/claim", headers=mod).json()
        assert client.post(f"/v1/cases/{case['id']}/decision", json={"violation": True, "actions": ["remove"]},
                           headers=mod).status_code == 200

    def banked() -> list[str]:
        events = client.get(f"/v1/crises/{crisis['id']}", headers=senior).json()["events"]
        return [e["summary"] for e in events if e["kind"] == "crisis.perpetrator_banked"]

    summaries = until(banked)
    assert len(summaries) == 1 and "clip-1" in summaries[0]  # hate speech is not what the crisis is about
    client.app.state.matcher.refresh()  # type: ignore[attr-defined]
    assert upload(client, auth_header, "clip-2", clip)["status"] == "blocked"
    assert upload(client, auth_header, "other-2", other)["status"] == "published"


@pytest.mark.parametrize(("change", "detail"), [
    ({"protocol": "gifct_cip"}, "needs its level"),
    ({"countries": ["France"]}, "countries"),
    ({"categories": ["csam"]}, "categories"),
    ({"material": [{"signal_type": "pdq", "value": "zz"}]}, "material"),
    ({"protocol": "other"}, ""),
    ({"review_threshold_factor": 0}, ""),
])
def test_bad_activations_change_nothing(crisis_client: TestClient, auth_header: Header,
                                        change: dict[str, object], detail: str) -> None:
    body = {"protocol": "internal", "reference": "X-1", "countries": ["FR"], **change}
    r = crisis_client.post("/v1/crises", json=body, headers=auth_header(Role.ADMIN))
    assert r.status_code == 422, r.text
    assert detail in r.json()["detail"]
    assert crisis_client.get("/v1/crises", headers=auth_header(Role.ADMIN)).json() == []


def test_a_crisis_never_takes_over_a_bank_it_did_not_make(crisis_client: TestClient,
                                                         auth_header: Header) -> None:
    specialist, senior = auth_header(Role.CHILD_SAFETY), auth_header(Role.SENIOR_MODERATOR)
    for name, restricted in (("CRISIS_X1", True), ("CRISIS_X2", False)):
        assert crisis_client.post("/v1/banks", json={"name": name, "restricted": restricted},
                                  headers=specialist).status_code == 201
    answers = [crisis_client.post("/v1/crises", json={"protocol": "internal", "reference": ref, "countries": ["FR"]},
                                  headers=senior) for ref in ("X1", "X2")]
    assert [a.status_code for a in answers] == [422, 422]
    # the same words whether the bank is restricted or not: nothing tells a restricted bank apart
    assert answers[0].json()["detail"].replace("X1", "X2") == answers[1].json()["detail"]
    assert crisis_client.get("/v1/crises", headers=auth_header(Role.ADMIN)).json() == []


def test_edited_copies_of_a_crisis_video_are_blocked(crisis_client: TestClient, auth_header: Header,
                                                     tmp_path: Path) -> None:
    import numpy as np

    from tests.factories.media import make_video, read_frames, write_video

    client, senior = crisis_client, auth_header(Role.SENIOR_MODERATOR)
    crisis = client.post("/v1/crises", json={"protocol": "internal", "reference": "VID-1", "countries": ["FR"]},
                         headers=senior).json()
    video = make_video(tmp_path / "attack.mp4", seed=9, seconds=6, size=(320, 240))
    with video.open("rb") as f:
        r = client.post(f"/v1/crises/{crisis['id']}/material-file", files={"media": ("attack.mp4", f, "video/mp4")},
                        headers=senior)
    assert r.status_code == 200, r.text

    def crop(frame: np.ndarray, share: float) -> np.ndarray:  # type: ignore[type-arg]
        h, w = frame.shape[:2]
        return np.ascontiguousarray(frame[int(h * share):h - int(h * share), int(w * share):w - int(w * share)])

    edits = {"reencoded": lambda f: f, "cropped": lambda f: crop(f, 0.05),
             "mirrored": lambda f: np.ascontiguousarray(f[:, ::-1]),
             "cropped-mirrored": lambda f: np.ascontiguousarray(crop(f, 0.03)[:, ::-1])}
    for name, edit in edits.items():
        path = write_video(tmp_path / f"{name}.mp4", (edit(f) for f in read_frames(video)), bit_rate=300_000)
        with path.open("rb") as f:
            answer = client.post("/v1/content", files={"media": (path.name, f, "video/mp4")}, headers=auth_header(
                Role.PLATFORM), data={"content_id": f"re-{name}", "account_id": "a", "account_age": "30",
                                      "account_country": "FR", "content_type": "video"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "blocked", name
