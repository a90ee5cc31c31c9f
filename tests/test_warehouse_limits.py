"""Every warehouse connection of a run has a bounded DuckDB buffer pool and a spill folder, taken
from the resource (and so from ASSURANCE_DUCKDB_MEMORY_LIMIT / ASSURANCE_DUCKDB_TEMP_DIRECTORY);
a value DuckDB cannot use is refused in one line that says what to give, never a traceback."""

from __future__ import annotations

import duckdb
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.definitions import build_resources
from pipelines.resources import WarehouseResource
from pipelines.settings import Settings, SettingsError
from warehouse import WarehouseLimits, WarehouseSettingError, open_warehouse
from warehouse.connection import DEFAULT_MEMORY_LIMIT

def _setting_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The memory limit as DuckDB shows it ("1.8 GiB"): compared with a reference connection's."""
    return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def _settings_of(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    return con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()


@pytest.mark.parametrize("read_only", [False, True])
def test_a_resource_connection_has_the_resources_memory_limit_and_spill_folder(tmp_path, read_only):
    open_warehouse(tmp_path / "warehouse.duckdb").close()  # a read-only open needs the file
    spill = tmp_path / "spill"
    resource = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"), memory_limit="700MB", temp_directory=str(spill))
    with resource.connect(read_only=read_only) as con:
        limit, temp_directory = _settings_of(con)
    with duckdb.connect() as reference:
        reference.execute("SET memory_limit = '700MB'")
        assert limit == _setting_bytes(reference)
    assert temp_directory == str(spill) and spill.is_dir()


def test_without_a_spill_folder_duckdb_spills_beside_the_working_file(tmp_path):
    resource = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))
    with resource.connect() as con:
        limit, temp_directory = _settings_of(con)
    with duckdb.connect() as reference:
        reference.execute(f"SET memory_limit = '{DEFAULT_MEMORY_LIMIT}'")
        assert limit == _setting_bytes(reference)  # not DuckDB's 80% of the machine
    assert temp_directory == str(tmp_path / ".work" / "warehouse.duckdb.tmp")


def test_a_query_larger_than_the_limit_spills_instead_of_failing(tmp_path):
    """A sort of ~400 MB of rows under a 100 MB buffer pool completes by spilling to the folder."""
    spill = tmp_path / "spill"
    con = open_warehouse(tmp_path / "warehouse.duckdb", limits=WarehouseLimits("100MB", str(spill)))
    try:
        con.execute("SET threads = 1")
        con.execute("CREATE TABLE big AS SELECT i, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s FROM range(4000000) t(i)")
        first = con.execute("SELECT s FROM (SELECT s FROM big ORDER BY s DESC) LIMIT 1 OFFSET 3999999").fetchone()[0]
    finally:
        con.close()
    assert len(first) == 64


@pytest.mark.parametrize("memory_limit", [
    "2 bananas",  # an unknown unit
    "lots",  # no number
    "1,5GB",  # a decimal comma
    "10%",  # a share of the machine, which DuckDB does not take
])
def test_a_memory_limit_duckdb_cannot_read_is_refused_in_one_line(tmp_path, memory_limit):
    with pytest.raises(WarehouseSettingError) as refused:
        with WarehouseResource(path=str(tmp_path / "warehouse.duckdb"), memory_limit=memory_limit).connect():
            pass
    message = str(refused.value)
    assert "\n" not in message and repr(memory_limit) in message and "ASSURANCE_DUCKDB_MEMORY_LIMIT" in message
    with pytest.raises(SettingsError, match="e.g. 2GB"):
        Settings(home=tmp_path, landing=tmp_path, duckdb_memory_limit=memory_limit)


def test_a_spill_folder_that_cannot_be_made_is_refused_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WarehouseSettingError, match="ASSURANCE_DUCKDB_TEMP_DIRECTORY") as refused:
        open_warehouse(tmp_path / "warehouse.duckdb", limits=WarehouseLimits("1GB", str(blocker / "spill")))
    assert "\n" not in str(refused.value)
    open_warehouse(tmp_path / "warehouse.duckdb").close()  # the refused connection was closed: no lock left


def test_the_environment_sets_the_run_resources_limits(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSURANCE_HOME", str(tmp_path))
    monkeypatch.setenv("ASSURANCE_DUCKDB_MEMORY_LIMIT", "1.5GiB")
    monkeypatch.setenv("ASSURANCE_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    warehouse = build_resources(Settings.from_env())["warehouse"]
    assert (warehouse.memory_limit, warehouse.temp_directory) == ("1.5GiB", str(tmp_path / "spill"))
    monkeypatch.delenv("ASSURANCE_DUCKDB_MEMORY_LIMIT")
    monkeypatch.delenv("ASSURANCE_DUCKDB_TEMP_DIRECTORY")
    warehouse = build_resources(Settings.from_env())["warehouse"]
    assert (warehouse.memory_limit, warehouse.temp_directory) == (DEFAULT_MEMORY_LIMIT, "")


def test_run_refuses_a_bad_memory_limit_before_anything_runs(tmp_path, monkeypatch):
    for name in ("ASSURANCE_HOME", "ASSURANCE_LANDING", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ASSURANCE_DUCKDB_MEMORY_LIMIT", "2 bananas")
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["run", "--landing", str(tmp_path), "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert "'2 bananas' is not a size" in result.output and "Traceback" not in result.output
    assert not (home / "warehouse.duckdb").exists()
