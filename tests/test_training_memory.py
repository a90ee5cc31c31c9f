"""The model stages hold fewer copies of the training rows, and nothing they produce changes:
the label rows (the vintage reuse key's input), the boosters, the scores, the metrics and the
frames users see are the ones the code gave before (bench/results/training_memory.md)."""

from __future__ import annotations

import gc
import hashlib
import json
import weakref
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from assets.modeling import _load_training
from demo_frames import example_training_frame
from models.loss_rate import exposure_rows, train_loss_rate_model
from models.registry import tracking_uri_for_home
from models.training import (
    TrainingConfig,
    complete_label_rows,
    rows_in_months,
    train_breach_model,
    training_data_fingerprint,
)
from models.training_set import untrainable_reason
from models.vintages import RiskModelKind, VintageConfig, build_vintages, rows_known_at

D = date.fromisoformat
FAST = TrainingConfig(max_boost_rounds=60, early_stopping_rounds=20, min_data_in_leaf=50)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _frame_sha(frame: pd.DataFrame) -> str:
    header = "|".join(f"{c}:{t}" for c, t in frame.dtypes.items()).encode()
    return _sha(header + pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())


# Metrics added after the pinned code (session 18: each window's score spread and ties, for monitoring):
# the pinned hash covers every metric the code gave then.
METRICS_ADDED_SINCE = ("_log_spread", "_top_value_share")


def _digest(result, frame: pd.DataFrame) -> dict:
    """What users see of a trained model, hashed (values, dtypes and index of the frames)."""
    model = result.model
    boosters = getattr(model, "booster_models", None) or {"booster": model.booster_model}
    frames = {"evaluation_frame": result.evaluation_frame}
    if hasattr(result, "calibration_frame"):
        frames["calibration_frame"] = result.calibration_frame
    return {
        "fingerprint": result.data_fingerprint[:16],
        "boosters": _sha(json.dumps(boosters, sort_keys=True).encode()),
        "scores": _sha(np.asarray(model.pyfunc_predict(frame), dtype=float).tobytes()),
        "metrics": _sha(json.dumps({k: repr(float(v)) for k, v in sorted(result.metrics.items())
                                    if not k.endswith(METRICS_ADDED_SINCE)}).encode()),
        "row_counts": result.row_counts,
        **{name: _frame_sha(f) for name, f in frames.items()},
        "training_rows": _frame_sha(result.training_rows),
    }


_COUNTS = {"calibration": 600, "evaluation": 600, "train": 1800}
# Pinned from the code before the memory work (main 1bc2285) on `shuffled_frame`, with FAST: the
# same hashes now prove the label rows (so the fingerprints), boosters, scores on the frame,
# metrics, row counts and result frames unchanged, bit for bit.
BEFORE = {
    "breach": {"boosters": "54437b5f29a8b0f7", "calibration_frame": "1fadd69b985f08f0",
               "evaluation_frame": "74137a7ef5f4f7e7", "fingerprint": "22e9e59f89a9be7e",
               # metrics: session 18's isotonic end steps (no probability of exactly 0 or 1) moved one,
               # calibration_cv_ece_isotonic 0.060165 -> 0.060110 (Platt is chosen; nothing else moved)
               "metrics": "0bb946e00a73cfc9", "row_counts": _COUNTS | {"dropped_incomplete": 600, "dropped_warmup": 0},
               "scores": "78672c619691f740", "training_rows": "82f496c166659f8c"},
    "default": {"boosters": "fc25313beda36128", "calibration_frame": "0ca150e94bd977a4",
                "evaluation_frame": "c2b579c3a2d6fa2d", "fingerprint": "22e9e59f89a9be7e",
                "metrics": "4451e0ba78228cdd", "row_counts": _COUNTS | {"dropped_incomplete": 600, "dropped_warmup": 0},
                "scores": "727365a0052b7e30", "training_rows": "82f496c166659f8c"},
    "loss_rate": {"boosters": "3db71a3cf261a6f8", "evaluation_frame": "92b26b896cb85031",
                  "fingerprint": "22e9e59f89a9be7e", "metrics": "0cc2559f9bd9bba5",
                  "row_counts": _COUNTS | {"dropped_no_exposure_or_incomplete": 600},
                  "scores": "f47ebea924b2a507", "training_rows": "82f496c166659f8c"},
}
TRAIN = {
    "breach": lambda rows, **kw: train_breach_model(rows, None, FAST, **kw),
    "default": lambda rows, **kw: train_breach_model(rows, None, FAST, label_column="default_6m",
                                                     size_non_increasing=True, **kw),
    "loss_rate": lambda rows, **kw: train_loss_rate_model(rows, None, FAST, **kw),
}
LABEL_ROWS = {"breach": complete_label_rows, "default": lambda rows: complete_label_rows(rows, "default_6m"),
              "loss_rate": exposure_rows}


@pytest.fixture(scope="module")
def shuffled_frame() -> pd.DataFrame:
    """Ten complete months and two open ones, rows out of key order (the sort must happen)."""
    frame = example_training_frame(n_suppliers=300, months=12, seed=3, incomplete_months=2)
    return frame.sample(frac=1.0, random_state=1)


@pytest.mark.parametrize("kind", sorted(BEFORE))
def test_every_output_is_the_one_the_code_gave_before(kind, shuffled_frame):
    assert _digest(TRAIN[kind](shuffled_frame), shuffled_frame) == BEFORE[kind]


@pytest.mark.parametrize("kind", sorted(BEFORE))
def test_training_on_the_label_rows_a_vintage_took_gives_the_same_outputs(kind, shuffled_frame):
    """The vintage path: rows known at the vintage, its label rows and their fingerprint handed in."""
    ordered = shuffled_frame.sort_values(["as_of_date", "supplier_id"], kind="mergesort")
    label_rows = LABEL_ROWS[kind](ordered)
    result = TRAIN[kind](ordered, label_rows=label_rows, data_fingerprint=training_data_fingerprint(label_rows))
    assert result.training_rows is label_rows, "the label rows are learned from as they are, not copied again"
    assert _digest(result, shuffled_frame) == BEFORE[kind]


def _former_complete_label_rows(training: pd.DataFrame, label_column: str = "breach_6m") -> pd.DataFrame:
    """complete_label_rows as it was written before (main 1bc2285): the reference."""
    rows = training
    if "label_complete" in rows.columns:
        rows = rows[rows["label_complete"].fillna(False).astype(bool)]
    rows = rows[rows[label_column].notna()].copy()
    rows["as_of_date"] = pd.to_datetime(rows["as_of_date"]).dt.date
    return rows.sort_values(["as_of_date", "supplier_id"], kind="mergesort").reset_index(drop=True)


def _former_exposure_rows(training: pd.DataFrame) -> pd.DataFrame:
    """exposure_rows as it was written before (main 1bc2285): the reference."""
    rows = training
    if "label_complete" in rows.columns:
        rows = rows[rows["label_complete"].fillna(False).astype(bool)]
    rows = rows[rows["breach_refund_usd_6m"].notna()]
    exposure = pd.to_numeric(rows["forward_order_value_6m_usd"], errors="coerce")
    rows = rows[exposure > 0].copy()
    rows["as_of_date"] = pd.to_datetime(rows["as_of_date"]).dt.date
    return rows.sort_values(["as_of_date", "supplier_id"], kind="mergesort").reset_index(drop=True)


def _keyed(order: list[int], **columns) -> pd.DataFrame:
    base = pd.DataFrame({
        "as_of_date": [D("2024-01-31"), D("2024-01-31"), D("2024-02-29"), D("2024-02-29"), D("2024-03-31")],
        "supplier_id": ["a", "b", "a", "b", "a"],
        "breach_6m": [True, False, None, True, False],
        "label_complete": [True, True, True, None, True],
        "forward_order_value_6m_usd": [10.0, 0.0, 5.0, np.nan, 7.0],
        "breach_refund_usd_6m": [1.0, 0.0, 0.0, 2.0, None],
        "x": [1.0, 2.0, 3.0, 4.0, 5.0],
    } | columns)
    return base.iloc[order]


@pytest.mark.parametrize(
    "frame",
    [
        # already in key order, as the stored training set is: no sort, same rows
        _keyed([0, 1, 2, 3, 4]),
        # out of key order with an index that is not 0..n-1: sorted, reindexed
        _keyed([4, 2, 0, 3, 1]),
        # the same key twice: the stable sort keeps the rows' own order
        _keyed([3, 1, 0, 2, 4], supplier_id=["a", "a", "a", "a", "a"], as_of_date=[D("2024-01-31")] * 5),
        # dates as timestamps (a frame read without date conversion): turned into dates
        _keyed([1, 0, 2, 3, 4], as_of_date=pd.to_datetime(["2024-01-31", "2024-01-31", "2024-02-29", "2024-02-29",
                                                           "2024-03-31"])),
        # no label_complete column: every row with a label counts
        _keyed([2, 1, 0, 3, 4]).drop(columns="label_complete"),
        # nothing kept
        _keyed([0, 1, 2, 3, 4], label_complete=[False] * 5),
        # no rows at all
        _keyed([]),
    ],
)
def test_label_rows_are_the_rows_the_former_filters_gave(frame):
    """The vintage reuse key hashes these rows: the same frame (values, dtypes, index) keeps
    every registered vintage's fingerprint, so no user's vintages are retrained."""
    before = frame.copy()
    for current, former in ((complete_label_rows, _former_complete_label_rows), (exposure_rows, _former_exposure_rows)):
        rows = current(frame)
        pd.testing.assert_frame_equal(rows, former(frame))
        assert training_data_fingerprint(rows) == training_data_fingerprint(former(frame))
    pd.testing.assert_frame_equal(frame, before)  # the input is never written to


def _numbers_share_memory(part: pd.DataFrame, whole: pd.DataFrame) -> bool:
    return np.shares_memory(part["x"].to_numpy(), whole["x"].to_numpy())


def test_rows_known_at_a_vintage_are_a_slice_of_a_frame_in_month_order_and_the_same_rows_otherwise():
    months = [D("2024-05-31"), D("2024-06-30"), D("2024-07-31")] * 2
    training = pd.DataFrame({"as_of_date": sorted(months), "supplier_id": ["a", "b"] * 3, "x": np.arange(6.0)})
    known = rows_known_at(training, D("2024-12-31"))
    assert list(known.index) == [0, 1, 2, 3] and _numbers_share_memory(known, training)
    shuffled = training.iloc[[4, 0, 5, 1, 2, 3]]
    pd.testing.assert_frame_equal(rows_known_at(shuffled, D("2024-12-31")),
                                  shuffled[shuffled["as_of_date"] <= D("2024-06-30")])


def test_a_window_is_a_slice_of_rows_in_month_order_and_the_same_rows_otherwise():
    rows = pd.DataFrame({"as_of_date": [D("2024-01-31")] * 2 + [D("2024-02-29")] * 2 + [D("2024-03-31")] * 2,
                         "x": np.arange(6.0)})
    window = rows_in_months(rows, [D("2024-02-29"), D("2024-03-31")])
    assert list(window.index) == [2, 3, 4, 5] and _numbers_share_memory(window, rows)
    apart = rows_in_months(rows, [D("2024-01-31"), D("2024-03-31")])  # not one run of rows: a copy
    pd.testing.assert_frame_equal(apart, rows.loc[[0, 1, 4, 5]])
    assert rows_in_months(rows, [D("2025-01-31")]).empty


def test_a_build_keeps_only_the_newest_vintage_s_result_and_no_training_rows(tmp_path):
    """The results of older vintages (each holding frames of its rows) are released as soon as
    the next vintage is trained, so the memory does not grow with the number of vintages."""
    training = example_training_frame(n_suppliers=200, months=16, seed=4)
    trained = []

    def train(rows, label_rows, fingerprint):
        result = train_breach_model(rows, None, FAST, data_fingerprint=fingerprint, label_rows=label_rows)
        trained.append(weakref.ref(result))
        return result

    kind = RiskModelKind("breach", "memory_breach", "breach_6m", untrainable_reason, complete_label_rows, train)
    dates = [D("2024-09-30"), D("2024-12-31"), D("2025-03-31")]
    build = build_vintages(training, kind, dates, tracking_uri_for_home(tmp_path), "t", VintageConfig(3, 6))
    gc.collect()
    assert len(trained) == 3 and [ref() is not None for ref in trained] == [False, False, True]
    assert build.newest_result is trained[-1]() and build.newest_trained == build.vintages[-1]
    assert build.newest_result.training_rows is None, "logged to MLflow, then released"
    assert set(build.newest_result.evaluation_frame["as_of_date"]) == set(build.newest_result.split.evaluation)


def test_a_build_that_reuses_every_vintage_has_no_result(tmp_path):
    training = example_training_frame(n_suppliers=200, months=12, seed=4)
    kind = RiskModelKind("breach", "memory_breach", "breach_6m", untrainable_reason, complete_label_rows,
                         lambda rows, label_rows, fingerprint: TRAIN["breach"](rows, data_fingerprint=fingerprint,
                                                                               label_rows=label_rows))
    uri, config = tracking_uri_for_home(tmp_path), VintageConfig(3, 6)
    build_vintages(training, kind, [D("2024-12-31")], uri, "t", config)
    again = build_vintages(training, kind, [D("2024-12-31")], uri, "t", config)
    assert again.newest_result is None and again.newest_trained is None


class _Warehouse:
    def __init__(self, path) -> None:
        self.path = str(path)

    def connect(self, read_only: bool = False):
        return duckdb.connect(self.path, read_only=read_only)


@pytest.mark.parametrize(
    "select",
    [
        # dates, text, doubles, booleans and integers, each with a NULL
        "SELECT * FROM (VALUES (DATE '2024-02-29', 's2', 1.5::DOUBLE, TRUE, 3), (DATE '2024-01-31', 's1', NULL, NULL, NULL),"
        " (DATE '2024-01-31', NULL, 2.0::DOUBLE, FALSE, 7)) t(as_of_date, supplier_id, x, flag, n)",
        # no NULL: integers and booleans keep their numpy types
        "SELECT (DATE '2024-01-31' + INTERVAL (i) MONTH)::DATE AS as_of_date, 's' || i AS supplier_id, i::BIGINT AS n,"
        " i % 2 = 0 AS flag, i::INTEGER AS m FROM range(4) r(i)",
        # every integer width and a boolean with a NULL: pandas' nullable types, as .df() made them
        "SELECT * FROM (VALUES (DATE '2024-01-31', 's1', 1::TINYINT, 1::SMALLINT, 1::UBIGINT, TRUE),"
        " (DATE '2024-01-31', 's2', NULL, NULL, NULL, NULL)) t(as_of_date, supplier_id, a, b, c, d)",
        # a HUGEINT: doubles, as .df() made them
        "SELECT DATE '2024-01-31' AS as_of_date, 's' || i AS supplier_id, (i * 1000003)::HUGEINT AS h FROM range(5) r(i)",
        # decimals: doubles, as .df() made them (Arrow alone would give Python decimals, or other bits)
        "SELECT DATE '2024-01-31' AS as_of_date, 's' || i AS supplier_id, (i / 7.0)::DECIMAL(18, 6) AS d,"
        " (i / 3.0)::DECIMAL(38, 20) AS e FROM range(500) r(i)",
    ],
)
def test_the_training_set_loads_as_duckdb_s_own_frame_gave_it(tmp_path, select):
    """Same values, dtypes and order as the former read: every vintage's fingerprint holds."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA models")
        con.execute(f"CREATE TABLE models.training_set AS {select}")
        former = con.execute("SELECT * FROM models.training_set ORDER BY as_of_date, supplier_id").df()
    former["as_of_date"] = pd.to_datetime(former["as_of_date"]).dt.date
    pd.testing.assert_frame_equal(_load_training(_Warehouse(path)), former)


def test_an_empty_training_set_loads_with_dates_as_objects_like_a_missing_one(tmp_path):
    """(The former read left an empty date column as timestamps: harmless, nothing trains on it.)"""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA models")
        con.execute("CREATE TABLE models.training_set AS SELECT DATE '2024-01-31' AS as_of_date, 's' AS supplier_id LIMIT 0")
    empty = _load_training(_Warehouse(path))
    assert empty.empty and list(empty.columns) == ["as_of_date", "supplier_id"]
    assert empty["as_of_date"].dtype == _load_training(_Warehouse(tmp_path / "none.duckdb"))["as_of_date"].dtype == object


def _former_fingerprint(frame: pd.DataFrame) -> str:
    """training_data_fingerprint as it was written before (main 1bc2285): the reference."""
    ordered = frame.sort_values(["as_of_date", "supplier_id"], kind="mergesort")[sorted(frame.columns)]
    digest = hashlib.sha256("|".join(ordered.columns).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize(
    "frame",
    [
        # in key order, every kind of column the training set holds (text, dates, numbers, flags, NULLs)
        _keyed([0, 1, 2, 3, 4], n=pd.array([1, None, 3, 4, 5], dtype="Int64"), tier=list("ggfvg")),
        # out of key order: hashed in key order, never copied into it
        _keyed([3, 0, 4, 2, 1], tier=pd.Categorical(list("ggfvg"))),
        # the same key twice: the stable order decides
        _keyed([4, 2, 0, 1, 3], as_of_date=[D("2024-01-31")] * 5, supplier_id=["a"] * 5),
        # one row, no rows
        _keyed([2]),
        _keyed([]),
    ],
)
def test_the_fingerprint_is_the_one_the_former_hash_of_a_sorted_copy_gave(frame):
    assert training_data_fingerprint(frame) == _former_fingerprint(frame)
