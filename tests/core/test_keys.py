"""Key files (the media key, the audit key): created private, refused when others may read them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bastion.core.config import Settings
from bastion.core.sealing import SealError, load_or_create_key


def test_a_new_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "media.key"
    key = load_or_create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "media.key"
    load_or_create_key(path)
    path.chmod(mode)
    with pytest.raises(SealError, match=f"mode {mode:04o}.*chmod 600"):
        load_or_create_key(path)


def test_settings_name_the_key_that_cannot_be_used(tmp_path: Path) -> None:
    media, audit = tmp_path / "media.key", tmp_path / "audit.key"
    settings = replace(Settings(), media_key_file=media, audit_key_file=audit)
    settings.media_sealer()
    assert len(settings.audit_mac_key()) == 32 and audit.stat().st_mode & 0o777 == 0o600
    media.chmod(0o644)
    audit.chmod(0o644)
    with pytest.raises(SealError, match=r"media key: the key file .* may be read by others"):
        settings.media_sealer()
    with pytest.raises(SealError, match="audit key: the key file"):
        settings.audit_mac_key()
