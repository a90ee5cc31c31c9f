"""The `assurance` command line (DESIGN §6): exit codes and one-line errors, never a traceback."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from synthetic import generate_landing_zone


@pytest.fixture(autouse=True)
def restore_environment(monkeypatch):
    """The CLI exports its settings to the environment (Dagster reads them); keep them out of other tests."""
    for name in ("ASSURANCE_HOME", "ASSURANCE_LANDING", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def small_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("cli") / "landing"
    generate_landing_zone(landing, n_suppliers=60, start="2024-01", months=8, seed=3)
    return landing


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_generate_writes_a_landing_zone_with_truth(tmp_path):
    result = invoke("generate", "--out", str(tmp_path / "lz"), "--suppliers", "40", "--months", "8", "--seed", "5")
    assert result.exit_code == 0, result.output
    for table in ("suppliers", "orders", "inquiries", "disputes", "reviews", "_truth"):
        assert any((tmp_path / "lz" / table).rglob("*.parquet")), table


def test_validate_exits_zero_on_a_clean_landing_zone(small_landing):
    result = invoke("validate", "--landing", str(small_landing))
    assert result.exit_code == 0, result.output
    assert "orders" in result.output and "quarantined" in result.output


def test_validate_exits_two_with_one_clear_line_when_a_table_is_missing(small_landing, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(small_landing, broken)
    shutil.rmtree(broken / "orders")
    result = invoke("validate", "--landing", str(broken))
    assert result.exit_code == 2
    assert "orders" in result.output and "Traceback" not in result.output


def test_run_refuses_an_unusable_landing_zone_with_exit_two(small_landing, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(small_landing, broken)
    shutil.rmtree(broken / "orders")
    result = CliRunner().invoke(main, ["run", "--landing", str(broken), "--home", str(tmp_path / "home")])
    assert result.exit_code == 2, result.output
    assert "unusable landing zone" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("month", ["2024-13", "24-01", "2024/01"])
def test_run_rejects_a_malformed_month(small_landing, month):
    result = CliRunner().invoke(main, ["run", "--landing", str(small_landing), "--from", month])
    assert result.exit_code == 2
    assert "YYYY-MM" in result.output


def test_demo_never_touches_the_landing_zone_configured_in_the_environment(tmp_path, monkeypatch):
    """`assurance demo` regenerates its own landing zone; a real one named by ASSURANCE_LANDING must survive."""
    import pipelines.cli as cli

    real = tmp_path / "real_landing"
    real.mkdir()
    (real / "keep.txt").write_text("somebody's data")
    monkeypatch.setenv("ASSURANCE_LANDING", str(real))
    generated = []

    def fake_generate(out_dir, **_kwargs):
        generated.append(out_dir)
        raise RuntimeError("stop after choosing the folder")

    monkeypatch.setattr("synthetic.generate_landing_zone", fake_generate)
    result = CliRunner().invoke(cli.main, ["demo", "--home", str(tmp_path / "home")])
    assert result.exit_code == 1
    assert generated == [(tmp_path / "home" / "landing").resolve()]
    assert (real / "keep.txt").exists()
