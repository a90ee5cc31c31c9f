"""`assurance`: the short way to generate data, run the pipeline and validate a landing zone (docs/design.md §6)."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import sys
import time
from pathlib import Path

import click

from pipelines.settings import FEATURE_ENGINES, Settings

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")

# Exit codes (README "Exit codes"): 0 ok; 1 the run or validation failed; 2 unusable input or
# bad usage (a malformed month, --from after --to, months outside the data); 3 busy (another
# run is writing the same home, or the warehouse is locked).
EXIT_FAILED, EXIT_UNUSABLE_INPUT, EXIT_BUSY = 1, 2, 3


def _month(_ctx, _param, value: str | None) -> str | None:
    if value is not None and not MONTH.match(value):
        raise click.BadParameter(f"{value!r} is not a month: use YYYY-MM, e.g. 2025-06")
    return value


def clean_errors(command):
    """Known failures become one line on stderr and an exit code, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from data_contracts import LandingZoneError
        from models.overrides import OverridesFileError
        from models.policy import PolicyConfigError
        from pipelines.home_lock import HomeBusyError
        from pipelines.resources import FeatureEngineUnavailableError
        from pipelines.runner import MonthRangeError, PipelineRunFailed
        from pipelines.settings import SettingsError
        from warehouse import WarehouseLockedError
        from warehouse.landing_metadata import WarehouseNotLoadedError

        try:
            return command(*args, **kwargs)
        except LandingZoneError as error:
            click.secho(f"error: unusable landing zone: {error}", fg="red", err=True)
            sys.exit(EXIT_UNUSABLE_INPUT)
        except (MonthRangeError, SettingsError, FeatureEngineUnavailableError) as error:
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(EXIT_UNUSABLE_INPUT)
        except OverridesFileError as error:
            click.secho(f"error: unusable overrides file: {error}", fg="red", err=True)
            sys.exit(EXIT_UNUSABLE_INPUT)
        except PolicyConfigError as error:
            click.secho(f"error: unusable policy file: {error}", fg="red", err=True)
            sys.exit(EXIT_UNUSABLE_INPUT)
        except (WarehouseLockedError, HomeBusyError) as error:
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(EXIT_BUSY)
        except PipelineRunFailed as error:
            click.secho(f"error: {error}", fg="red", err=True)
            if error.log_path:
                click.echo(f"log: {error.log_path}", err=True)
            sys.exit(error.exit_code)
        except WarehouseNotLoadedError as error:
            click.secho(f"error: {error}", fg="red", err=True)
            sys.exit(EXIT_FAILED)
        except Exception as error:  # noqa: BLE001 - last resort: still one clear line
            if os.environ.get("ASSURANCE_DEBUG") or kwargs.get("verbose"):
                raise
            log = _log_traceback()
            click.secho(f"error: {type(error).__name__}: {error}", fg="red", err=True)
            click.echo(f"log: {log}" if log else "(set ASSURANCE_DEBUG=1 to see the traceback)", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper


def _log_traceback() -> Path | None:
    """Write the current exception's traceback to a log under the home folder, if a command set one."""
    import traceback

    from pipelines.run_log import append_to_log, new_log_path

    if not os.environ.get("ASSURANCE_HOME"):
        return None
    try:
        path = new_log_path(Path(os.environ["ASSURANCE_HOME"]))
        append_to_log(path, traceback.format_exc())
    except OSError:
        return None
    return path


def _settings(home: str | None, landing: str | None = None, engine: str | None = None) -> Settings:
    if home:
        os.environ["ASSURANCE_HOME"] = str(Path(home).resolve())
    if landing:
        os.environ["ASSURANCE_LANDING"] = str(Path(landing).resolve())
    if engine:
        os.environ["ASSURANCE_FEATURE_ENGINE"] = engine
    return Settings.from_env()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="supplier-assurance", prog_name="assurance")
def main() -> None:
    """Supplier assurance: monthly supplier risk scores and Trade Assurance Amounts."""


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the landing zone to.")
@click.option("--suppliers", default=5000, show_default=True, type=click.IntRange(min=1), help="How many suppliers to simulate.")
@click.option("--start", default="2024-01", show_default=True, callback=_month, help="First month (YYYY-MM).")
@click.option("--months", default=30, show_default=True, type=click.IntRange(min=7),
              help="Months of trading history (at least 7: six to look back over, one to score).")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed: the same seed writes the same landing zone.")
@clean_errors
def generate(out_dir: str, suppliers: int, start: str, months: int, seed: int) -> None:
    """Write a synthetic landing zone (with `_truth/`)."""
    from synthetic import generate_landing_zone

    try:
        summary = generate_landing_zone(
            Path(out_dir), n_suppliers=suppliers, start=start, months=months, seed=seed, progress=lambda line: click.echo(f"  {line}")
        )
    except ValueError as error:  # a start before the contracts' plausible era: bad usage
        click.secho(f"error: {error}", fg="red", err=True)
        sys.exit(EXIT_UNUSABLE_INPUT)
    click.echo(summary.describe() if hasattr(summary, "describe") else str(summary))


def _run(settings: Settings, first: str | None, last: str | None, verbose: bool = False):
    """Check the months against each other and against the data, then run them: nothing runs on a bad range."""
    from data_contracts.span import landing_zone_month_span
    from models.overrides import load_overrides
    from pipelines.resources import feature_engine_resource
    from pipelines.runner import check_month_order, month_range, run_months

    check_month_order(first, last)
    load_overrides(settings.overrides, required=settings.overrides_file is not None)  # a bad file stops nothing half-way
    if settings.policy_file:
        from models.policy import Policy

        Policy.from_yaml(settings.policy_file)  # nor does a bad policy file (exit 2, one line)
    feature_engine_resource(settings).check_available()  # Spark without pyspark or Java: one line, before any work
    span = landing_zone_month_span(settings.landing)
    first, last = month_range(first, last, span)
    click.echo(f"running months {first}..{last} on {settings.landing} (home {settings.home})")
    return run_months(settings, first, last, verbose=verbose, echo=lambda line: click.echo(line, err=True), span=span)


VERBOSE = click.option("--verbose", "-v", is_flag=True, help="Print Dagster's full stack traces on the console too (they always go to the log).")
ENGINE = click.option(
    "--engine", type=click.Choice(FEATURE_ENGINES), envvar="ASSURANCE_FEATURE_ENGINE", show_envvar=True,
    help="Where the feature assets compute [default: duckdb]; spark needs the spark extra and reads "
    "ASSURANCE_SPARK_MASTER / ASSURANCE_SPARK_REMOTE (README, Running the features on Spark).",
)


@main.command()
@click.option("--landing", required=True, envvar="ASSURANCE_LANDING", show_envvar=True,
              type=click.Path(exists=True, file_okay=False), help="Landing-zone folder (docs/design.md §3).")
@click.option("--home", envvar="ASSURANCE_HOME", show_envvar=True, type=click.Path(file_okay=False),
              help="Home folder for outputs [default: ./var].")
@click.option("--from", "first", callback=_month, help="First as-of month YYYY-MM [default: first month with orders].")
@click.option("--to", "last", callback=_month, help="Last as-of month YYYY-MM [default: last complete month of data].")
@ENGINE
@VERBOSE
@clean_errors
def run(landing: str, home: str | None, first: str | None, last: str | None, engine: str | None, verbose: bool) -> None:
    """Ingest, validate, compute features, train or reuse the model vintages, score and publish, as one Dagster run.

    Exit codes: 0 ok; 1 the run failed; 2 unusable input or months outside the data; 3 another
    run is writing the same home. The full log is under the home folder, in logs/.
    """
    from pipelines.summary import describe_run

    settings = _settings(home, landing, engine)
    started = time.monotonic()
    outcome = _run(settings, first, last, verbose)
    click.echo(describe_run(settings, outcome, seconds=time.monotonic() - started))


@main.command()
@click.option("--home", envvar="ASSURANCE_HOME", show_envvar=True, type=click.Path(file_okay=False), help="Home folder [default: ./var].")
@click.option("--suppliers", default=5000, show_default=True, type=click.IntRange(min=50), help="How many suppliers to simulate.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed: the same seed gives the same world and results.")
@click.option("--months", default=30, show_default=True, type=click.IntRange(min=13),
              help="Months of trading history (at least 13: enough for six months of outcomes to train on).")
@ENGINE
@VERBOSE
@clean_errors
def demo(home: str | None, suppliers: int, seed: int, months: int, engine: str | None, verbose: bool) -> None:
    """Generate a synthetic landing zone under the home folder and run the whole pipeline on it."""
    from pipelines.home_lock import home_lock
    from pipelines.summary import describe_run
    from synthetic import generate_landing_zone

    # The demo always writes its own landing zone under the home folder: never the one
    # ASSURANCE_LANDING may point at, which holds somebody's real data.
    configured = _settings(home, None, engine)
    settings = dataclasses.replace(configured, landing=configured.home / "landing")
    os.environ["ASSURANCE_LANDING"] = str(settings.landing)
    started = time.monotonic()
    # Taken before the landing zone is replaced: a run in progress on this home may be reading it.
    with home_lock(settings.home):
        if settings.landing.exists():
            shutil.rmtree(settings.landing)
        click.echo(f"generating {suppliers:,} suppliers over {months} months into {settings.landing}")
        generate_landing_zone(settings.landing, n_suppliers=suppliers, months=months, seed=seed, progress=lambda line: click.echo(f"  {line}"))
        outcome = _run(settings, None, None, verbose)
    click.echo(describe_run(settings, outcome, seconds=time.monotonic() - started, truth_dir=settings.landing / "_truth"))


@main.command()
@click.option("--landing", required=True, envvar="ASSURANCE_LANDING", show_envvar=True,
              type=click.Path(exists=True, file_okay=False), help="Landing-zone folder (docs/design.md §3).")
@click.option("--home", envvar="ASSURANCE_HOME", show_envvar=True, type=click.Path(file_okay=False),
              help="Home folder [default: ./var].")
@clean_errors
def months(landing: str, home: str | None) -> None:
    """Register the months the landing zone covers as partitions of the home's Dagster instance.

    `assurance run` does this itself; run it before `dagster asset materialize --partition-range`
    or the UI on a home where nothing has run yet. Exit 2 when the landing zone is unusable.
    """
    from pipelines.runner import register_landing_months

    settings = _settings(home, landing)
    data_months, new = register_landing_months(settings)
    added = f"registered {', '.join(new)}" if new else "all registered already"
    click.echo(f"the data covers {data_months[0]}..{data_months[-1]} ({len(data_months)} months): {added} "
               f"(partitions `month_end` in {settings.dagster_home})")


@main.command()
@click.option("--landing", required=True, envvar="ASSURANCE_LANDING", show_envvar=True, type=click.Path(file_okay=False),
              help="Landing-zone folder to check.")
@clean_errors
def validate(landing: str) -> None:
    """Check a landing zone against the contracts: exit 0 clean, 1 beyond tolerance, 2 unusable."""
    from data_contracts import validate_landing_zone

    _report, exit_code, text = validate_landing_zone(Path(landing))
    click.echo(text, err=exit_code == EXIT_UNUSABLE_INPUT)
    sys.exit(exit_code)


@main.command()
@click.option("--home", envvar="ASSURANCE_HOME", show_envvar=True, type=click.Path(file_okay=False),
              help="Home folder of a scored run [default: ./var].")
@click.option(
    "--policy",
    "policy_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A policy YAML to compare with the current one (repeatable); e.g. models/policies/conservative.yaml.",
)
@clean_errors
def backtest(home: str | None, policy_files: tuple[str, ...]) -> None:
    """Replay the limit policy (and what-if variants) over already-scored months: no retraining."""
    from datetime import datetime

    from models.backtest import compare_policies, load_scored_history
    from models.backtest_report import backtest_csv_path, formatted, totals_text, write_backtest_report
    from models.policy import Policy
    from models.vintage_maturity import vintage_maturity
    from warehouse import open_warehouse
    from warehouse.landing_metadata import read_data_horizon

    settings = _settings(home)
    current = Policy.from_yaml(settings.policy_file) if settings.policy_file else Policy.default()
    policies = [current, *(Policy.from_yaml(Path(file)) for file in policy_files)]
    with open_warehouse(settings.warehouse, read_only=True) as con:
        history = load_scored_history(con, read_data_horizon(con))
    comparison = compare_policies(history, policies)
    first = comparison.results[current.version]
    path = settings.reports / f"backtest-{datetime.now():%Y%m%d-%H%M%S}.html"
    shown = comparison if len(policies) > 1 else None
    write_backtest_report(first, path, comparison=shown)
    click.echo(totals_text(first, shown))
    maturity = vintage_maturity(history)
    if len(maturity):
        click.echo("\nmodel vintages as their outcomes matured (out of sample: each month scored by its own vintage)")
        click.echo(formatted(maturity).to_string(index=False))
    click.echo(f"\nreport: {path}\nper month, side by side (CSV): {backtest_csv_path(path)}")


@main.command("check-overrides")
@click.option("--home", envvar="ASSURANCE_HOME", show_envvar=True, type=click.Path(file_okay=False),
              help="Home folder [default: ./var].")
@click.option("--file", "overrides_file", type=click.Path(dir_okay=False),
              help="Overrides YAML [default: $ASSURANCE_OVERRIDES, else overrides.yaml in the home folder].")
@clean_errors
def check_overrides(home: str | None, overrides_file: str | None) -> None:
    """Validate the analyst overrides file and list its overrides: exit 0 valid, 2 unusable."""
    from models.overrides import load_overrides

    settings = _settings(home)
    path = Path(overrides_file).resolve() if overrides_file else settings.overrides
    overrides = load_overrides(path, required=bool(overrides_file) or settings.overrides_file is not None)
    if not path.exists():
        click.echo(f"no overrides file at {path}: no overrides apply")
        return
    click.echo(f"{path}: {len(overrides.entries)} override(s), version {overrides.version}")
    for entry in overrides.entries:
        amount = "" if entry.amount_usd is None else f" ${entry.amount_usd:,.0f}"
        click.echo(f"  {entry.id}: {entry.action}{amount} {entry.supplier_id} from {entry.start} until {entry.expiry} "
                   f"({entry.author}: {entry.reason})")


@main.command("import-olist")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the landing zone to.")
@clean_errors
def import_olist_command(src: str, out_dir: str) -> None:
    """Turn the Olist public marketplace data into a landing zone."""
    from importers.olist import import_olist

    summary = import_olist(Path(src), Path(out_dir))
    click.echo(summary.describe() if hasattr(summary, "describe") else str(summary))


if __name__ == "__main__":
    main()
