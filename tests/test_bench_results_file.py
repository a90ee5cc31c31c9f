"""A bench rerun rewrites its tables and keeps the notes people wrote below them."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from results_file import NOTES_MARKER, write_keeping_notes  # noqa: E402


@pytest.mark.parametrize(
    "before, expected_tail",
    [
        # no file yet: the tables and an empty marker for notes to go under
        (None, NOTES_MARKER + "\n"),
        # notes under the marker: carried over verbatim, whatever the old tables said
        (f"| old table |\n\n{NOTES_MARKER}\n\nLoad was 12; the 8m row ran beside a demo.\n",
         f"{NOTES_MARKER}\n\nLoad was 12; the 8m row ran beside a demo.\n"),
        # a file from before the marker: kept whole below the marker, never dropped
        ("| old table |\n\nNotes (by hand): the cap halves the peak.\n",
         f"{NOTES_MARKER}\n\nThe previous version of this file, as it was:\n\n"
         "| old table |\n\nNotes (by hand): the cap halves the peak.\n"),
    ],
)
def test_rewriting_results_keeps_the_hand_written_notes(tmp_path, before, expected_tail):
    path = tmp_path / "results" / "run.md"
    if before is not None:
        path.parent.mkdir()
        path.write_text(before)
    write_keeping_notes(path, "# Benchmark\n\n| new table |\n")
    text = path.read_text()
    assert text == "# Benchmark\n\n| new table |\n\n" + expected_tail
    # a second rewrite changes nothing: the notes are not duplicated
    write_keeping_notes(path, "# Benchmark\n\n| new table |\n")
    assert path.read_text() == text
