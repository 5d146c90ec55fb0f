"""``streamtape import`` run as a user would, on vcrpy cassettes written as vcrpy writes them.

The plugin's tests convert a cassette vcrpy itself recorded; these cover the file
shapes (YAML with text or binary bodies, JSON, folders) and the errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamtape.core.cassette import Cassette

SSE = 'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n'

YAML = """interactions:
- request:
    body: '{"model":"m","stream":true}'
    headers:
      authorization:
      - Bearer sk-live-0123456789abcdefghijklmnop
      content-type:
      - application/json
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: !!binary |
        ZGF0YTogeyJhIjoxfQoKZGF0YTogeyJhIjoyfQoKZGF0YTogW0RPTkVdCgo=
    headers:
      content-type:
      - text/event-stream
    status:
      code: 200
      message: OK
version: 1
"""


def streamtape(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamtape", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_yaml_folder_converts_beside_itself_redacted_with_gaps(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    folder = tmp_path / "cassettes" / "test_mod"
    folder.mkdir(parents=True)
    (folder / "test_one.yaml").write_text(YAML)
    done = streamtape("import", "cassettes", "--gap", "0.05", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [exchange] = Cassette.open(folder / "test_one.tape").exchanges()
    assert exchange.body == SSE.encode()
    assert [r.t_ns for r in exchange.reads] == [50_000_000, 100_000_000, 150_000_000]
    assert "sk-live" not in repr(exchange.request) and exchange.redacted

    again = streamtape("import", "cassettes", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip().endswith("already exists; pass --force to replace it")


def test_a_json_cassette_replays_instantly_by_default(tmp_path: Path) -> None:
    cassette = {
        "interactions": [
            {
                "request": {
                    "method": "GET",
                    "uri": "https://x.test/v1/models",
                    "body": None,
                    "headers": {},
                },
                "response": {
                    "status": {"code": 200, "message": "OK"},
                    "headers": {"content-type": ["application/json"]},
                    "body": {"string": '{"data": []}'},
                },
            }
        ],
        "version": 1,
    }
    (tmp_path / "old.json").write_text(json.dumps(cassette))
    done = streamtape("import", "old.json", "-o", "new.tape", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [exchange] = Cassette.open(tmp_path / "new.tape").exchanges()
    assert exchange.body == b'{"data": []}' and [r.t_ns for r in exchange.reads] == [0]


def test_a_file_that_is_not_a_vcrpy_cassette_gets_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"not": "a cassette"}')
    done = streamtape("import", "x.json", cwd=tmp_path)
    assert done.returncode == 1 and not (tmp_path / "x.tape").exists()
    assert done.stderr.strip().splitlines() == [
        "Error: x.json: no 'interactions' list; is it a vcrpy cassette?"
    ]
