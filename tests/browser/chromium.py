"""Headless Chromium (Debian's, installed by scripts/chromium.sh) and a PNG reader."""

from __future__ import annotations

import resource
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "chromium.sh"


def browser() -> str:
    """The browser's path; an error saying how to install it when it is missing."""
    out = subprocess.run(["bash", str(SCRIPT), "path"], capture_output=True, text=True)
    assert out.returncode == 0, f"{out.stderr.strip()} (make test-browser installs it)"
    return out.stdout.strip()


@dataclass(frozen=True)
class Loaded:
    """What loading a page cost and gave."""

    output: bytes
    wall: float  # seconds, browser start included
    cpu: float  # seconds of CPU used by the browser's processes


def run(*args: str, page: Path, timeout: float = 60) -> Loaded:
    """Run headless Chromium on ``page`` with ``args`` and a throw-away profile."""
    with tempfile.TemporaryDirectory() as profile:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run(
            [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True, timeout=timeout, check=False,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Loaded(out.stdout, wall, cpu)


def dump_dom(page: Path) -> tuple[str, Loaded]:
    """The DOM as Chromium built it from ``page``, serialised."""
    loaded = run("--dump-dom", page=page)
    return loaded.output.decode(), loaded


def screenshot(page: Path, out: Path, width: int, height: int) -> Loaded:
    """A PNG of the top ``width`` × ``height`` pixels of ``page``."""
    return run(f"--window-size={width},{height}", f"--screenshot={out}", page=page)


@dataclass(frozen=True)
class Png:
    """A decoded 8-bit RGB(A) PNG: size and pixels as (r, g, b) rows."""

    width: int
    height: int
    rows: list[list[tuple[int, int, int]]]

    def share_not_white(self) -> float:
        """The share of pixels that are not (nearly) white."""
        total = dark = 0
        for row in self.rows:
            for r, g, b in row:
                total += 1
                dark += (r + g + b) < 3 * 245
        return dark / total if total else 0.0

    def colours(self) -> int:
        """How many distinct colours (coarsely) the image has."""
        return len({(r >> 4, g >> 4, b >> 4) for row in self.rows for r, g, b in row})


def read_png(path: Path) -> Png:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[list[tuple[int, int, int]]] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])  # type: ignore[misc]
        previous = line
    return Png(width, height, rows)
