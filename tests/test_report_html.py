"""The HTML report opens in headless Chromium without console errors and draws the streams."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from recordings import edited, run

STREAM_BLUE = (0x1F, 0x6F, 0xEB)
"""The stroke of each stream's bytes-over-time line (``svg .bytes`` in report.css)."""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium package)")
    return found


def open_in_chromium(page: Path, tmp_path: Path, *, screenshot: Path) -> str:
    """Load ``page`` headless, take a screenshot; Chromium's log (console messages) is returned."""
    profile = tmp_path / "profile"
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,1400",
        f"--screenshot={screenshot}",
        page.as_uri(),
    ]
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "HOME": str(tmp_path)},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"chromium cannot run here: {exc}")
    if not screenshot.exists():
        pytest.skip(
            f"chromium ran but wrote no screenshot (exit {proc.returncode}): {proc.stderr[-500:]}"
        )
    return proc.stderr


def console_problems(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "CONSOLE" in line or "Failed to load resource" in line or "Refused to" in line
    ]


def png_pixels(path: Path, max_rows: int) -> tuple[int, list[bytes]]:
    """Width and the first unfiltered RGB rows of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6)
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(min(height, max_rows)):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for j, v in enumerate(line) if j % 4 != 3))
        prev = line
    return width, rows


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, workload_tape: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report")
    a = workload_tape
    b = edited(a, root / "b.tape", 1, [(b'"finish_reason":"length"', b'"finish_reason":"stop"', 1)])
    return a, b


def test_report_opens_without_console_errors_and_shows_the_streams(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = pair
    page = tmp_path / "report.html"
    run("report", a, b, "-o", page)
    html = page.read_text()
    assert html.count("<svg") == 8  # four pairs, two streams each
    assert "http://" not in html.replace(str(a), "").split("<body>", 1)[1].split("POST")[0]
    assert "<script" not in html and "default-src 'none'" in html
    assert "output[0].stop_reason" in html and "differs" in html
    shot = tmp_path / "report.png"
    log = open_in_chromium(page, tmp_path, screenshot=shot)
    assert console_problems(log) == []
    width, rows = png_pixels(shot, max_rows=320)  # the first pair's streams are at the top
    blue = bytes(STREAM_BLUE)
    hits = [
        (y, x // 3)
        for y, row in enumerate(rows)
        for x in range(0, len(row), 3)
        if row[x : x + 3] == blue
    ]
    assert len(hits) > 200, "no stream line was drawn"
    assert min(x for _, x in hits) < width // 2 < max(x for _, x in hits)  # A and B side by side


def test_a_page_with_an_error_is_caught(tmp_path: Path) -> None:
    """The console check is not vacuous: a script error and a blocked fetch are reported."""
    page = tmp_path / "bad.html"
    page.write_text('<!doctype html><title>x</title><script>console.error("boom")</script><p>x</p>')
    log = open_in_chromium(page, tmp_path, screenshot=tmp_path / "bad.png")
    assert any("boom" in line for line in console_problems(log))


def test_report_of_one_cassette(pair: tuple[Path, Path], tmp_path: Path) -> None:
    page = tmp_path / "one.html"
    out = run("report", pair[0], "-o", page, "--json").stdout
    assert '"exchanges": 4' in out
    assert page.read_text().count("<svg") == 4
