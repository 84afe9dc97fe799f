"""`make bench-report` (bench/report.py): the one way a benchmark's tables reach BENCHMARKS.md,
each copied between its markers, the hand-written text around them kept."""

from __future__ import annotations

from pathlib import Path

from bench import report

PAGE = """# Benchmarks

Hand-written introduction.

<!-- results:start (old) -->
old figures
<!-- results:end -->

Analysis by hand.

## Scale

<!-- scale:start (old) -->
old scale
<!-- scale:end -->
Closing words.
"""


def test_the_tables_are_copied_between_their_markers(tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(PAGE)
    results = tmp_path / "results.md"
    results.write_text("<!-- results:start (new) -->\n| new | 1 |\n<!-- results:end -->\n")
    missing = tmp_path / "results-scale.md"  # no bench-scale run yet: that section stays
    assert report.main(page, (("results", results), ("scale", missing))) == 0
    assert page.read_text() == PAGE.replace(
        "<!-- results:start (old) -->\nold figures", "<!-- results:start (new) -->\n| new | 1 |"
    )


def test_nothing_to_copy_leaves_the_page_alone(tmp_path: Path) -> None:
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(PAGE)
    assert report.main(page, (("results", tmp_path / "absent.md"),)) == 1
    assert page.read_text() == PAGE


def test_the_real_page_has_both_markers() -> None:
    text = report.PAGE.read_text()
    for marker, _ in report.BLOCKS:
        assert text.count(f"<!-- {marker}:start") == text.count(f"<!-- {marker}:end -->") == 1
