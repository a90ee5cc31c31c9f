"""Risk models saved as plain files (LightGBM text + JSON) load back bit-identical:
same probabilities, loss rates, contributions and reason codes, for every model variant."""

import json

import numpy as np
import pandas as pd
import pytest

from demo_frames import example_training_frame
from models.loss_rate import train_loss_rate_model
from models.model_files import MODEL_DOCUMENT, ModelFilesError, load_model_files, save_model_files
from models.training import TrainingConfig, train_breach_model

FAST = TrainingConfig(max_boost_rounds=60, early_stopping_rounds=20, min_data_in_leaf=40, feature_warmup_months=0)
FAST_LOSS = TrainingConfig(
    max_boost_rounds=60, early_stopping_rounds=20, min_data_in_leaf=40,
    lightgbm_overrides={"objective": "tweedie", "tweedie_variance_power": 1.5},
)


@pytest.fixture(scope="module")
def frame():
    return example_training_frame(n_suppliers=300, months=10, seed=5, incomplete_months=1)


# Every kind of part a model can hold: each variant exercises another serialization path.
MODEL_VARIANTS = {
    # booster alone, Platt calibrator (two floats)
    "breach_platt": lambda f: train_breach_model(f, None, TrainingConfig(**{**FAST.to_dict(), "calibration_method": "platt"})),
    # booster alone, isotonic calibrator (two float arrays)
    "breach_isotonic": lambda f: train_breach_model(f, None, TrainingConfig(**{**FAST.to_dict(), "calibration_method": "isotonic"})),
    # logistic blend: LinearScore with bool/float arrays, categorical levels and their coefficients
    "default_blend": lambda f: train_breach_model(
        f, None, TrainingConfig(**{**FAST.to_dict(), "logistic_blend": 0.5}), label_column="default_6m",
        size_non_increasing=True,
    ),
    # identity calibrator (no parameters)
    "breach_identity": lambda f: train_breach_model(f, None, TrainingConfig(**{**FAST.to_dict(), "calibration_method": "identity"})),
    # three Tweedie boosters with their scales
    "loss_rate": lambda f: train_loss_rate_model(f, None, FAST_LOSS),
    # ... pulled toward their portfolio rates (models/loss_rate.yaml's portfolio_blend)
    "loss_rate_blend": lambda f: train_loss_rate_model(f, None, TrainingConfig(**{**FAST_LOSS.to_dict(), "portfolio_blend": 0.05})),
}


@pytest.fixture(scope="module", params=sorted(MODEL_VARIANTS))
def trained(request, frame):
    return MODEL_VARIANTS[request.param](frame)


def _state(model) -> dict:
    """Everything a model holds except its lazily built boosters."""
    return {k: v for k, v in vars(model).items() if k not in ("_booster", "_boosters")}


def assert_same(loaded, original, where="model"):
    """Equal in value, type, order and dtype, recursively (floats exactly)."""
    assert type(loaded) is type(original), where
    if isinstance(original, np.ndarray):
        assert loaded.dtype == original.dtype, where
        np.testing.assert_array_equal(loaded, original, err_msg=where)
    elif isinstance(original, dict):
        assert list(loaded) == list(original), where
        for key in original:
            assert_same(loaded[key], original[key], f"{where}.{key}")
    elif isinstance(original, list | tuple):
        assert len(loaded) == len(original), where
        for i, (a, b) in enumerate(zip(loaded, original, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif hasattr(original, "__dataclass_fields__"):
        assert_same(vars(loaded), vars(original), where)
    else:
        assert loaded == original or (loaded != loaded and original != original), where  # NaN equals NaN


def test_saved_files_load_back_bit_identical(tmp_path, frame, trained):
    original = trained.model
    folder = save_model_files(original, tmp_path / "model")
    assert sorted(p.suffix for p in folder.iterdir()) <= [".json", *[".txt"] * 3]  # JSON and booster text only
    loaded = load_model_files(folder)

    assert type(loaded) is type(original)
    assert_same(_state(loaded), _state(original))  # every attribute, arrays and floats exactly
    rows = frame.head(400)
    if hasattr(original, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(rows), original.predict_proba(rows))
        np.testing.assert_array_equal(loaded.raw_proba(rows), original.raw_proba(rows))
    else:
        pd.testing.assert_frame_equal(loaded.predict_rates(rows), original.predict_rates(rows), check_exact=True)
    np.testing.assert_array_equal(loaded.contributions(rows), original.contributions(rows))
    assert loaded.reason_codes(rows) == original.reason_codes(rows)


def test_saving_twice_writes_the_same_bytes(tmp_path, trained):
    first = save_model_files(trained.model, tmp_path / "a")
    second = save_model_files(load_model_files(first), tmp_path / "b")
    assert {p.name: p.read_bytes() for p in first.iterdir()} == {p.name: p.read_bytes() for p in second.iterdir()}


# Folders that are not a model of this format: each gets a one-line error saying why.
@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "holds no model.json"),  # an empty folder (e.g. an old pickled model's artifacts)
        ({"format": 99, "kind": "breach_risk"}, "format 99.*retrain"),  # written by a newer/older layout
    ],
)
def test_a_folder_that_is_not_a_model_is_refused_clearly(tmp_path, document, message):
    if document is not None:
        (tmp_path / MODEL_DOCUMENT).write_text(json.dumps(document))
    with pytest.raises(ModelFilesError, match=message):
        load_model_files(tmp_path)
