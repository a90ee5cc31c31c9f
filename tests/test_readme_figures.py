"""pipelines.readme_figures: the README's sample output comes from a home folder (the block's
lines against a real run: tests/test_pipeline_end_to_end.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.readme_figures import BEGIN, END, README, ReadmeFiguresError, main, replace_block, run_seconds


def test_run_seconds_spans_the_logs_first_and_last_stamped_lines(tmp_path: Path):
    log = tmp_path / "run.log"
    log.write_text(
        "2026-12-06 06:57:09,857 - DEBUG - assurance_monthly - RUN_START\n"
        "  a traceback line without a stamp\n"
        "2026-12-06 06:58:40,381 - DEBUG - assurance_monthly - RUN_SUCCESS\n"
    )
    assert run_seconds(log) == 91


def test_readme_has_one_sample_output_block():
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert text.index(BEGIN) < text.index(END)
    with pytest.raises(ReadmeFiguresError, match="markers"):
        replace_block("no markers here", "block")


def test_a_home_without_a_run_is_one_line_and_exit_2(tmp_path: Path, capsys):
    assert main(["--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run `assurance demo" in err
