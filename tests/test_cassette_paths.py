"""A wrong cassette path fails when the transport is built, naming the path, in our tree."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest

from streamtape.core.cassette import Cassette
from streamtape.errors import (
    CassetteAccessError,
    CassetteError,
    CassetteNotFoundError,
    StreamtapeError,
)
from streamtape.simulator.app import UpstreamServer
from streamtape.transport import AsyncRecordingTransport, RecordingTransport, ReplayTransport


def test_replay_from_a_missing_file_fails_at_once_and_suggests_near_names(tmp_path: Path) -> None:
    (tmp_path / "typo.tape").write_bytes(b"")
    missing = tmp_path / "typo.tapee"
    with pytest.raises(CassetteNotFoundError) as info:
        ReplayTransport(missing)
    message = str(info.value)
    assert str(missing) in message and "no such cassette" in message
    assert "did you mean" in message and "typo.tape'" in message
    assert isinstance(info.value, CassetteError) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(CassetteNotFoundError, match=r"folder .* does not exist"):
        ReplayTransport(Cassette(tmp_path / "nowhere" / "t.tape"))


@pytest.mark.parametrize("cls", [RecordingTransport, AsyncRecordingTransport])
@pytest.mark.parametrize("where", ["missing folder", "folder", "under a file"])
def test_recorder_that_cannot_write_fails_before_any_request(
    tmp_path: Path, cls: type, where: str
) -> None:
    (tmp_path / "file").write_bytes(b"x")
    path = {
        "missing folder": tmp_path / "no" / "such" / "t.tape",
        "folder": tmp_path,
        "under a file": tmp_path / "file" / "t.tape",
    }[where]
    with pytest.raises(CassetteAccessError) as info:
        cls(path)
    assert str(path) in str(info.value) and "cannot write the cassette" in str(info.value)
    assert isinstance(info.value, StreamtapeError) and isinstance(info.value, OSError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing left behind


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a file system that refuses writes")
def test_permission_denied_is_wrapped() -> None:
    with pytest.raises(CassetteAccessError, match=r"permission denied|read-only"):
        RecordingTransport(Path("/sys") / "streamtape-test.tape")


def test_recorder_probe_leaves_new_and_existing_files_as_they_were(
    tmp_path: Path, upstream: UpstreamServer, http_lib: types.ModuleType
) -> None:
    fresh = tmp_path / "fresh.tape"
    RecordingTransport(fresh)
    assert not fresh.exists()
    with http_lib.Client(transport=RecordingTransport(fresh)) as client:
        client.get(upstream.base_url + "/models", headers={"authorization": "Bearer k"})
    before = fresh.read_bytes()
    RecordingTransport(fresh)
    assert fresh.read_bytes() == before and len(Cassette.open(fresh).exchanges()) == 1


def test_builtin_errors_of_the_python_api_are_ours(tmp_path: Path) -> None:
    with pytest.raises(CassetteAccessError, match="is a folder"):
        Cassette.open(tmp_path)
    with pytest.raises(CassetteAccessError, match="is a folder") as info:
        Cassette(tmp_path).exchanges()
    assert str(tmp_path) in str(info.value)
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(CassetteAccessError, match="part of the path is a file"):
        list(Cassette(tmp_path / "file" / "t.tape").entries())
