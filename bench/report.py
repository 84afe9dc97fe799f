"""`make bench-report`: copy the tables `make bench` and `make bench-scale` left under bench/
(`results.md`, `results-scale.md`) into BENCHMARKS.md, each between its markers.

A benchmark run writes only under bench/, so figures from a laptop never land in the tracked
page by accident; a person copies them in on purpose, with this, and writes the analysis
around them by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "BENCHMARKS.md"
# (marker name, the generated file holding that block, markers included)
BLOCKS = (
    ("results", ROOT / "bench" / "results.md"),
    ("scale", ROOT / "bench" / "results-scale.md"),
)


def splice(page: str, marker: str, block: str) -> str:
    """`page` with its `marker` block replaced by `block` (which carries the markers)."""
    start = page.index(f"<!-- {marker}:start")
    end_marker = f"<!-- {marker}:end -->"
    end = page.index(end_marker, start) + len(end_marker)
    return page[:start] + block.strip("\n") + page[end:]


def main(page_path: Path = PAGE, blocks: tuple[tuple[str, Path], ...] = BLOCKS) -> int:
    page = page_path.read_text()
    copied = []
    for marker, source in blocks:
        if source.exists():
            page = splice(page, marker, source.read_text())
            copied.append(source.name)
    if not copied:
        print("nothing to copy: run `make bench` or `make bench-scale` first", file=sys.stderr)
        return 1
    page_path.write_text(page)
    print(f"copied {', '.join(copied)} into {page_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
