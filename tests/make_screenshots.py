"""Render the README's screenshots from the demo machine: SVG from Textual, PNG via rsvg-convert.

Run by `make screenshots`; writes screenshots/*.png.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uikit import demo_app, running, stage

OUT = Path(__file__).resolve().parent.parent / "screenshots"

SHOTS: list[tuple[str, tuple[int, int], int | None, tuple[str, ...]]] = [
    # (name, terminal size, port to highlight, keys to press)
    ("main", (130, 38), 3000, ()),
    ("details", (180, 42), 8080, ()),
    ("confirm", (130, 38), 8080, ("t",)),  # a forking server: the master and 2 workers
    ("timewait", (180, 34), None, ("z", "down", "down", "down", "down", "down")),
    ("probe", (130, 38), 3000, ("b",)),
    ("filter", (130, 30), None, ("slash", *"proc:node -state:tw")),
    # A term half typed: the reason in the box's border, the last valid filter kept.
    ("filter-invalid", (130, 30), None, ("slash", *"proc:node port:abc")),
    # A server a shell loop restarts: who manages it, and the plan that frees it for good.
    ("managed", (180, 42), 8000, ()),
    ("free", (130, 38), 8000, ("f",)),
    # A published Docker port: the container that holds it, and the plan that stops it.
    ("container", (180, 42), 8025, ()),
    ("container-free", (130, 38), 8025, ("f",)),
]


async def shoot(name: str, size: tuple[int, int], port: int | None, keys: tuple[str, ...],
                folder: Path) -> Path:
    app = demo_app()
    async with running(app, size=size) as pilot:
        await stage(pilot, port, keys)
        path = folder / f"{name}.svg"
        app.save_screenshot(str(path.name), path=str(folder))
    return path


_TEXT = re.compile(r'(<text[^>]*?x=")([0-9.]+)("[^>]*?textLength=")([0-9.]+)("[^>]*>)'
                   r'((?:&#160;)+)([^<]*)(</text>)')


def _shift_leading_spaces(svg: str) -> str:
    """rsvg drops the leading no-break spaces of a <text>: move x past them instead."""
    def fix(m: re.Match[str]) -> str:
        spaces = len(m[6]) // len("&#160;")
        rest = html.unescape(m[7])
        if not rest:
            return m[0]
        cell = float(m[4]) / (spaces + len(rest))
        x = float(m[2]) + spaces * cell
        return f"{m[1]}{x:.1f}{m[3]}{float(m[4]) - spaces * cell:.1f}{m[5]}{m[7]}{m[8]}"
    return _TEXT.sub(fix, svg)


def main() -> int:
    os.environ["TZ"] = "UTC"
    time.tzset()
    converter = shutil.which("rsvg-convert")
    if converter is None:
        print("rsvg-convert not found: install librsvg2-bin (make screenshots does this as "
              "root)", file=sys.stderr)
        return 1
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, size, port, keys in SHOTS:
            svg = asyncio.run(shoot(name, size, port, keys, Path(tmp)))
            svg.write_text(_shift_leading_spaces(svg.read_text()))
            png = OUT / f"{name}.png"
            subprocess.run([converter, "--background-color", "#0c0c0c", "-o", str(png),
                            str(svg)], check=True)
            print(f"wrote {png.relative_to(OUT.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
