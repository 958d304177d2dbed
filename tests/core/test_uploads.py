"""Spooled uploads never outlive their process: a server killed mid-upload leaves nothing in clear after a restart."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bastion.core.auth.roles import Role
from bastion.core.sealing import new_key
from bastion.core.uploads import SPOOL_PREFIX, close_spool, open_spool, sweep_stale
from tests.factories.live import serve_process
from tests.factories.media import make_image
from tests.factories.model_host import Host, host  # noqa: F401 - a fixture


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def server_env(database_url: str, tmp_path: Path, host: Host) -> Iterator[dict[str, str]]:  # noqa: F811
    config = tmp_path / "classifiers.toml"
    config.write_text(f"""
[[classifiers]]
kind = "http"
name = "slow-model"
url = "{host.url}"
scores = ["hate_speech"]
accepts = ["image"]
timeout_seconds = 60
""")
    src = Path(__file__).resolve().parents[2] / "src"
    (tmp_path / "spool").mkdir()
    yield {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONPATH": f"{src}:{Path.cwd()}",
           "BASTION_DATABASE_URL": database_url, "BASTION_SPOOL_DIR": str(tmp_path / "spool"),
           "BASTION_CLASSIFIERS": str(config), "BASTION_MEDIA_KEY": new_key(), "BASTION_INDEX_REFRESH_MS": "200"}


def test_an_upload_spooled_when_the_server_is_killed_is_gone_after_the_restart(
        server_env: dict[str, str], make_token: Callable[[Role], str], host: Host, tmp_path: Path) -> None:  # noqa: F811
    spool = Path(server_env["BASTION_SPOOL_DIR"])
    image = make_image(tmp_path / "upload.png", seed=7, size=(1200, 900))
    token = make_token(Role.PLATFORM)
    host.answer(delay=60)  # the model host holds the upload's scoring: the spooled file is on disk until it answers
    with serve_process(server_env) as (base, proc):
        data = {"content_id": "c-1", "account_id": "a", "account_age": "30", "account_country": "FR",
                "content_type": "image"}

        def upload() -> None:
            with image.open("rb") as f, pytest.raises(httpx.TransportError):  # the server dies under it
                httpx.post(f"{base}/v1/content", data=data, files={"media": ("u.png", f, "image/png")},
                           headers={"Authorization": f"Bearer {token}"}, timeout=90)

        uploading = threading.Thread(target=upload)
        uploading.start()
        asked = threading.Event()
        for _ in range(600):  # until the server has spooled, hashed and asked the model (an event, not a timing)
            if host.requests:
                asked.set()
                break
            asked.wait(0.1)
        assert asked.is_set(), "the server never asked the model host"
        (spooled,) = _files(spool)
        assert spooled.read_bytes() == image.read_bytes()  # the upload, in clear, as the review found it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        uploading.join(timeout=30)
    assert spooled.exists()  # the crash itself left it: only the restart may clean it
    with serve_process(server_env):
        assert _files(spool) == []
        assert [p.name.startswith(SPOOL_PREFIX) for p in spool.iterdir()] == [True]  # the new process's own
    assert list(spool.iterdir()) == []  # a clean stop takes its directory along


def test_a_live_process_spool_is_never_swept(tmp_path: Path) -> None:
    mine = open_spool(tmp_path)
    (mine / "upload").write_bytes(b"in use")
    assert sweep_stale(tmp_path) == []  # this process holds its lock
    assert (mine / "upload").exists()
    close_spool(tmp_path)
    assert not mine.exists()
