"""Writing a benchmark's Markdown results without losing what people wrote under them.

Each bench script regenerates its tables from its JSON; the readings people add by hand
(what the load was, why a figure moved) sit below ``NOTES_MARKER`` and are carried over
to the new file. Without it a rerun silently dropped them.
"""

from __future__ import annotations

from pathlib import Path

NOTES_MARKER = "<!-- Notes written by hand below this line: the bench keeps them when it rewrites this file. -->"


def write_keeping_notes(path: Path, generated: str) -> None:
    """Write ``generated`` to ``path``, followed by the hand-written notes the file already
    holds below ``NOTES_MARKER`` (or by the bare marker, so notes have a place to go)."""
    notes = NOTES_MARKER + "\n"
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if NOTES_MARKER in old:
            notes = old[old.index(NOTES_MARKER):]
        elif old.strip():
            # A file from before the marker: its generated part cannot be told from notes,
            # so it is kept whole beside the new one rather than lost.
            notes = f"{NOTES_MARKER}\n\nThe previous version of this file, as it was:\n\n{old}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generated.rstrip("\n") + "\n\n" + notes, encoding="utf-8")
