"""A risk model as plain files: LightGBM boosters in their own text format, the rest as JSON.

This is how the registry stores ``BreachRiskModel`` (breach and default) and
``LossRateModel``: nothing is pickled, so loading a model runs no code from the model
folder, and the files can be read (and diffed) by anyone. One folder per model:

* ``model.json``: ``{"format": 1, "kind": "breach_risk" | "loss_rate", ...}`` with the
  ordered features, category levels, training medians, metadata, thread count and, per
  kind, the calibrator and logistic part (breach risk) or the per-coverage scales,
  portfolio rates and portfolio blend (loss rate);
* ``booster.txt`` (breach risk) or ``booster_<coverage>.txt`` (loss rate): each booster's
  ``model_to_string`` text, verbatim.

Floats are written with Python's shortest round-trip representation and numpy arrays with
their dtype, so a loaded model predicts bit-identically to the saved one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.calibration import IdentityCalibrator, IsotonicCalibrator, PlattCalibrator
from models.linear_score import LinearScore
from models.loss_rate import LossRateModel
from models.model_features import ModelFeature
from models.scoring import BreachRiskModel

FORMAT_VERSION = 1
MODEL_DOCUMENT = "model.json"
# The artifact name a registered model keeps its folder under (models.mlflow_pyfunc).
MODEL_FILES_ARTIFACT = "model_files"
BREACH_RISK = "breach_risk"
LOSS_RATE = "loss_rate"
_CALIBRATORS = {cls().method: cls for cls in (IdentityCalibrator, PlattCalibrator, IsotonicCalibrator)}

RiskModel = BreachRiskModel | LossRateModel


class ModelFilesError(ValueError):
    """A model folder that is not a readable model of this format."""


def save_model_files(model: RiskModel, directory: str | Path) -> Path:
    """Write ``model`` into ``directory`` (created; files of the same names are replaced)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "features": [asdict(f) for f in model.features],
        "categories": model.categories,
        "medians": model.medians,
        "metadata": model.metadata,
        "num_threads": model.num_threads,
    }
    if isinstance(model, BreachRiskModel):
        boosters = {"booster.txt": model.booster_model}
        document |= {
            "kind": BREACH_RISK,
            "calibrator": _encode(model.calibrator),
            "linear": None if model.linear is None else _encode(model.linear),
            "booster_weight": model.booster_weight,
            "linear_weight": model.linear_weight,
        }
    elif isinstance(model, LossRateModel):
        boosters = {f"booster_{coverage}.txt": text for coverage, text in model.booster_models.items()}
        document |= {"kind": LOSS_RATE, "scales": model.scales, "coverages": list(model.booster_models),
                     "portfolio_rates": model.portfolio_rates, "portfolio_blend": model.portfolio_blend}
    else:
        raise TypeError(f"cannot save a {type(model).__name__}: only BreachRiskModel and LossRateModel")
    for file_name, text in boosters.items():
        (directory / file_name).write_text(text, encoding="utf-8")
    (directory / MODEL_DOCUMENT).write_text(
        json.dumps(document, indent=1, default=_plain), encoding="utf-8"
    )
    return directory


def load_model_files(directory: str | Path) -> RiskModel:
    """The model saved in ``directory`` by ``save_model_files``."""
    directory = Path(directory)
    path = directory / MODEL_DOCUMENT
    if not path.is_file():
        raise ModelFilesError(f"{directory} holds no {MODEL_DOCUMENT}: not a saved risk model folder")
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != FORMAT_VERSION:
        raise ModelFilesError(
            f"{path} is model file format {document.get('format')!r}; this code reads format {FORMAT_VERSION}: "
            "retrain the model with this code, or load it with the code that saved it"
        )
    common = {
        "features": [ModelFeature(**f) for f in document["features"]],
        "categories": document["categories"],
        "medians": document["medians"],
        "metadata": document["metadata"],
        "num_threads": document["num_threads"],
    }
    if document["kind"] == BREACH_RISK:
        return BreachRiskModel(
            (directory / "booster.txt").read_text(encoding="utf-8"),
            calibrator=_decode_dataclass(_CALIBRATORS[document["calibrator"]["method"]], document["calibrator"]),
            linear=None if document["linear"] is None else _decode_dataclass(LinearScore, document["linear"]),
            booster_weight=document["booster_weight"],
            linear_weight=document["linear_weight"],
            **common,
        )
    if document["kind"] == LOSS_RATE:
        boosters = {c: (directory / f"booster_{c}.txt").read_text(encoding="utf-8") for c in document["coverages"]}
        # a folder saved before the portfolio blend existed: the scaled boosters alone, as then
        return LossRateModel(boosters, document["scales"], portfolio_rates=document.get("portfolio_rates"),
                             portfolio_blend=document.get("portfolio_blend", 0.0), **common)
    raise ModelFilesError(f"{path}: unknown model kind {document['kind']!r}")


# -- dataclasses of numpy arrays (calibrators, the logistic part) <-> JSON ------------------
def _encode(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return _plain(value) if isinstance(value, np.generic) else value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"ndarray", "dtype"}:
            return np.asarray(value["ndarray"], dtype=np.dtype(value["dtype"]))
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _decode_dataclass(cls: type, document: dict[str, Any]) -> Any:
    return cls(**{f.name: _decode(document[f.name]) for f in fields(cls) if f.name in document})


def _plain(value: Any) -> Any:
    """numpy scalars (e.g. in metadata) as Python numbers; anything else is a mistake to report."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} {value!r} into {MODEL_DOCUMENT}")
