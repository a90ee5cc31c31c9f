"""The `assurance` command line (docs/design.md §6): exit codes and one-line errors, never a traceback."""

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


def test_the_landing_zone_and_home_come_from_the_environment_when_not_given(small_landing, monkeypatch):
    monkeypatch.setenv("ASSURANCE_LANDING", str(small_landing))
    result = invoke("validate")
    assert result.exit_code == 0, result.output
    assert "orders" in result.output
    assert "ASSURANCE_HOME" in invoke("run", "--help").output and "ASSURANCE_LANDING" in invoke("run", "--help").output


def test_version_and_every_option_has_help():
    from importlib.metadata import version

    assert invoke("--version").output.strip() == f"assurance, version {version('supplier-assurance')}"
    import click

    for command in main.commands.values():
        for option in command.params:
            if isinstance(option, click.Option):  # click arguments have no help of their own
                assert option.help, f"{command.name} --{option.name} has no help text"


def test_validate_exits_two_with_one_clear_line_when_a_table_is_missing(small_landing, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(small_landing, broken)
    shutil.rmtree(broken / "orders")
    result = invoke("validate", "--landing", str(broken))
    assert result.exit_code == 2
    assert "orders" in result.output and "Traceback" not in result.output


def without_table(landing, tmp_path, table: str):
    """A copy of the landing zone with one table's folder removed."""
    broken = tmp_path / "broken"
    shutil.copytree(landing, broken)
    shutil.rmtree(broken / table)
    return broken


def test_run_refuses_an_unusable_landing_zone_with_exit_two(small_landing, tmp_path):
    broken = without_table(small_landing, tmp_path, "orders")
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


# --- issue 13: messages and exit codes --------------------------------------------------------
# 0 ok (validate above; `run` in tests/test_run_recovery.py, the rerun after kill -9), 1 the run
# failed, 2 unusable input or bad usage, 3 busy (tests/test_run_recovery.py). A failure prints
# one line naming the cause and the next step, then the log path; stack traces go to the log.


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("error:", "log:"))]


@pytest.fixture
def broken_home(tmp_path):
    """A home whose warehouse file is not a DuckDB database: the first step fails inside the run."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "warehouse.duckdb").write_bytes(b"not a database" * 100)
    return home


def test_a_failed_run_prints_one_line_and_the_log_path_and_exits_one(small_landing, broken_home):
    home = broken_home
    result = CliRunner().invoke(main, ["run", "--landing", str(small_landing), "--home", str(home)])
    assert result.exit_code == 1, result.output
    error, log = error_lines(result.output)
    assert error.startswith("error: run ") and "step landing_zone:" in error and "next: " in error
    assert "Stack Trace" not in result.output and "Traceback" not in result.output
    log_path = log.removeprefix("log: ")
    assert log_path.startswith(str(home.resolve() / "logs" / "run-"))
    full = open(log_path).read()
    assert "Stack Trace" in full and "STEP_FAILURE" in full


def test_verbose_puts_the_stack_trace_on_the_console_too(small_landing, broken_home):
    result = CliRunner().invoke(main, ["run", "--landing", str(small_landing), "--home", str(broken_home), "--verbose"])
    assert result.exit_code == 1
    assert "Stack Trace" in result.output


def test_unusable_input_found_inside_the_run_exits_two(small_landing, tmp_path):
    """Orders fine (the months are known), suppliers missing: the ingest step refuses the landing zone."""
    broken = without_table(small_landing, tmp_path, "suppliers")
    result = CliRunner().invoke(main, ["run", "--landing", str(broken), "--home", str(tmp_path / "home")])
    assert result.exit_code == 2, result.output
    error, log = error_lines(result.output)
    assert "LandingZoneError: table 'suppliers'" in error and "next: " in error and log.startswith("log: ")
    assert error.count("LandingZoneError") == 1  # not "LandingZoneError: data_contracts.errors.LandingZoneError: ..."


def test_an_unexpected_error_is_one_line_with_its_traceback_in_the_log(tmp_path, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr("data_contracts.span.landing_zone_month_span", explode)
    (tmp_path / "landing").mkdir()
    result = CliRunner().invoke(main, ["run", "--landing", str(tmp_path / "landing"), "--home", str(tmp_path / "home")])
    assert result.exit_code == 1
    error, log = error_lines(result.output)
    assert error == "error: RuntimeError: something nobody expected"
    assert "Traceback" in open(log.removeprefix("log: ")).read()


OVERRIDE = """overrides:
  - {id: OV-1, supplier_id: S1, action: cap, amount_usd: 2000, reason: review, author: ana,
     start: 2025-01-01, expiry: 2025-07-01}
"""


def test_check_overrides_lists_a_valid_file(tmp_path):
    (tmp_path / "overrides.yaml").write_text(OVERRIDE)
    result = invoke("check-overrides", "--home", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "1 override(s)" in result.output and "OV-1: cap $2,000 S1 from 2025-01-01 until 2025-07-01" in result.output


def test_check_overrides_without_a_file_says_none_apply(tmp_path):
    result = invoke("check-overrides", "--home", str(tmp_path))
    assert result.exit_code == 0 and "no overrides apply" in result.output


def test_check_overrides_refuses_a_bad_file_in_one_line(tmp_path):
    (tmp_path / "overrides.yaml").write_text(OVERRIDE.replace("amount_usd: 2000, ", ""))
    result = invoke("check-overrides", "--home", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "override #1 (id 'OV-1'): a cap needs amount_usd" in result.output


def test_run_refuses_a_bad_overrides_file_before_anything_runs(small_landing, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "overrides.yaml").write_text(OVERRIDE.replace("action: cap", "action: ban"))
    result = CliRunner().invoke(main, ["run", "--landing", str(small_landing), "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "unusable overrides file" in result.output and "Traceback" not in result.output
    assert not (home / "warehouse.duckdb").exists() and not (home / "dagster").exists()


def test_run_refuses_an_overrides_file_named_but_missing(small_landing, tmp_path, monkeypatch):
    monkeypatch.setenv("ASSURANCE_OVERRIDES", str(tmp_path / "typo.yaml"))
    result = CliRunner().invoke(main, ["run", "--landing", str(small_landing), "--home", str(tmp_path / "home")])
    assert result.exit_code == 2 and "no such overrides file" in result.output


BAD_POLICY = "name: tap\nversion: 1.0.0\neligibility: {require_opt_in: yes-please}\n"


def test_backtest_refuses_a_bad_policy_file_in_one_line(tmp_path):
    policy = tmp_path / "typo.yaml"
    policy.write_text(BAD_POLICY)
    result = CliRunner().invoke(main, ["backtest", "--home", str(tmp_path), "--policy", str(policy)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"error: unusable policy file: {policy}: ")


def test_run_refuses_a_bad_policy_file_before_anything_runs(small_landing, tmp_path, monkeypatch):
    policy = tmp_path / "typo.yaml"
    policy.write_text(BAD_POLICY)
    monkeypatch.setenv("ASSURANCE_POLICY", str(policy))
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["run", "--landing", str(small_landing), "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "unusable policy file" in result.output and "missing key(s)" in result.output
    assert not (home / "warehouse.duckdb").exists() and not (home / "dagster").exists()
