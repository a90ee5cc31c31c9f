"""Takes the screenshots of docs/ui_tour.md: what a user sees in the Dagster UI, the MLflow UI and
the backtest report of a demo home, shot with headless Chromium. Not run by the tests.

To reproduce (Debian; Chromium comes from apt, Playwright drives it and downloads no browser):

    uv run assurance demo --home /tmp/shots-home --suppliers 1500 --seed 3
    uv run assurance backtest --home /tmp/shots-home --policy models/policies/v1.yaml
    apt-get install -y chromium
    uv run --with playwright==1.65.3 python docs/take_screenshots.py --home /tmp/shots-home

It starts `dagster dev` and `mlflow ui` on the home (free ports), waits until they answer, shoots
each page at 1400 px wide, stops both servers and writes the PNGs to docs/images/, each quantised
to a palette so that it stays small.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
WIDTH = 1400
SERVER_START_TIMEOUT_S = 300  # `dagster dev` loads the definitions in a subprocess: slow on a busy machine
MAX_PNG_BYTES = 400_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answering(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server for {url} exited ({server.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    sys.exit(f"{url} did not answer within {SERVER_START_TIMEOUT_S} s; see {log}")


@contextmanager
def server(command: list[str], env: dict[str, str], url: str, log: Path):
    """Runs a server in its own process group until the block ends, then stops that group."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering(url, process, log)
        yield url
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, then SIGKILL to whatever of it is left after a grace
    period: `dagster dev`'s webserver may ignore SIGTERM, and its daemon outlives its parent."""
    os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(1)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def shrink(png: Path) -> None:
    """A UI screenshot has few colours: a 256-colour palette keeps it legible at a fraction of the size."""
    image = Image.open(png).convert("RGB")
    for colours in (256, 128, 64):
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(png, optimize=True)
        if png.stat().st_size <= MAX_PNG_BYTES:
            return


def shoot(page: Page, path: Path) -> None:
    page.wait_for_timeout(1500)  # let charts and lazy tables finish drawing
    page.screenshot(path=path, full_page=True)
    shrink(path)
    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size / 1000:.0f} kB")


def newest_report(home: Path) -> Path:
    reports = sorted((home / "reports").glob("backtest-*.html"), key=lambda p: p.stat().st_mtime)
    if not reports:
        sys.exit(f"no backtest report under {home / 'reports'}: run `uv run assurance backtest --home {home} --policy ...` first")
    return reports[-1]


def champion(home: Path, model_name: str) -> tuple[str, str, str]:
    """The champion version of a registered model, and the experiment and id of its logged model
    (whose page lists the model's files)."""
    with sqlite3.connect(home / "mlflow.db") as db:
        row = db.execute(
            "SELECT v.version, m.experiment_id, m.model_id FROM registered_model_aliases a JOIN model_versions v "
            "ON v.name = a.name AND v.version = a.version JOIN logged_models m ON v.source = 'models:/' || m.model_id "
            "WHERE a.name = ? AND a.alias = 'champion'",
            [model_name],
        ).fetchone()
    if row is None:
        sys.exit(f"{model_name} has no champion in {home / 'mlflow.db'}: run the demo first")
    version, experiment_id, model_id = row
    return str(version), str(experiment_id), model_id


def newest_month(home: Path) -> str:
    """The newest published month as a partition key (YYYY-MM), from the Parquet tree."""
    months = sorted(p.name.removeprefix("as_of_date=")[:7] for p in (home / "published" / "supplier_scores").glob("as_of_date=*"))
    if not months:
        sys.exit(f"nothing published under {home / 'published'}: run the demo first")
    return months[-1]


def dagster_pages(page: Page, base: str, month: str, out: Path) -> None:
    asset = f"{base}/assets/published/supplier_scores"
    page.set_viewport_size({"width": WIDTH, "height": 1200})
    page.goto(asset, wait_until="networkidle", timeout=180_000)
    skip = page.get_by_role("button", name="Skip")  # the first-visit "join the community" dialog
    if skip.count():
        skip.click()
    # Overview: description, owners, kinds, freshness and the columns from the contract.
    page.get_by_text("Columns", exact=True).first.wait_for(timeout=120_000)
    page.set_viewport_size({"width": WIDTH, "height": 1500})
    shoot(page, out / "dagster_supplier_scores_columns.png")
    # Partitions: the newest month's materialization and its metadata (row count, Parquet path).
    page.get_by_role("tab", name="Partitions").click()
    page.get_by_text(month, exact=True).first.click()
    page.get_by_text("dagster/row_count").first.wait_for(timeout=120_000)
    page.set_viewport_size({"width": WIDTH, "height": 900})
    shoot(page, out / "dagster_supplier_scores_metadata.png")
    # Checks: the contract check's evaluations, one per month, each passed.
    page.get_by_role("tab", name="Checks").click()
    page.get_by_text("supplier_scores_meet_contract", exact=True).first.click()
    page.get_by_text("Execution history", exact=True).last.click()
    page.get_by_text("Passed").first.wait_for(timeout=120_000)
    page.set_viewport_size({"width": WIDTH, "height": 1100})
    shoot(page, out / "dagster_supplier_scores_checks.png")


def mlflow_pages(page: Page, base: str, home: Path, out: Path, model_name: str) -> None:
    version, experiment_id, logged_model = champion(home, model_name)
    page.set_viewport_size({"width": WIDTH, "height": 1200})
    page.goto(f"{base}/#/models/{model_name}/versions/{version}", wait_until="networkidle", timeout=180_000)
    # MLflow 3's UI opens in its GenAI workspace until "Model training" is chosen once (it ignores the
    # experiment's mlflow.experimentKind tag); a new user does this first.
    page.get_by_role("button", name="Model training").click()
    page.get_by_text("Schema", exact=True).first.wait_for(timeout=120_000)
    page.get_by_role("link", name="vintage-", exact=False).first.wait_for(timeout=120_000)  # the source run
    # The outputs unfolded; the 47 inputs stay folded (their count shows), or they fill the picture.
    page.get_by_text("Outputs (").last.click()
    page.set_viewport_size({"width": WIDTH, "height": 2000})
    page.evaluate("document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
    shoot(page, out / "mlflow_model_version.png")
    # The logged model's files: MLmodel (flavour, signature), the LightGBM text boosters, model.json.
    page = page.context.new_page()  # a hash route on the same page never reaches "networkidle" again
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.goto(f"{base}/#/experiments/{experiment_id}/models/{logged_model}", wait_until="networkidle", timeout=180_000)
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text("MLmodel", exact=True).first.click()
    page.wait_for_timeout(3000)
    shoot(page, out / "mlflow_model_artifacts.png")


def report_page(page: Page, report: Path, out: Path) -> None:
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.goto(report.resolve().as_uri(), wait_until="load")
    shoot(page, out / "backtest_report_variant.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a demo home (see above)")
    parser.add_argument("--report", type=Path, help="the backtest report to shoot [default: the home's newest]")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the PNGs go")
    parser.add_argument("--pages", default="dagster,mlflow,report", help="which of dagster, mlflow, report to shoot")
    parser.add_argument("--model", default="supplier_loss_rate", help="the registered model whose champion is shown")
    args = parser.parse_args()
    home = args.home.resolve()
    report = args.report or newest_report(home)
    args.out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="screenshots-"))
    env = {**os.environ, "ASSURANCE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    pages = set(args.pages.split(","))
    dagster_port, mlflow_port = free_port(), free_port()
    with sync_playwright() as playwright, ExitStack() as stack:
        if "dagster" in pages:
            dagster = stack.enter_context(server(
                ["uv", "run", "dagster", "dev", "-m", "pipelines.definitions", "-p", str(dagster_port)],
                env, f"http://127.0.0.1:{dagster_port}/server_info", logs / "dagster.log"))
        if "mlflow" in pages:
            mlflow = stack.enter_context(server(
                ["uv", "run", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}", "--port", str(mlflow_port)],
                env, f"http://127.0.0.1:{mlflow_port}/health", logs / "mlflow.log"))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        context = browser.new_context(viewport={"width": WIDTH, "height": 1200})
        # Keep MLflow's assistant panel closed: it would cover a quarter of every page.
        context.add_init_script(
            "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
            "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
        )
        if "dagster" in pages:
            dagster_pages(context.new_page(), dagster.removesuffix("/server_info"), newest_month(home), args.out)
        if "mlflow" in pages:
            mlflow_pages(context.new_page(), mlflow.removesuffix("/health"), home, args.out, args.model)
        if "report" in pages:
            report_page(context.new_page(), report, args.out)
    print(f"servers stopped; their logs are in {logs}")


if __name__ == "__main__":
    main()
