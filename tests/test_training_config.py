"""The training YAML (models/training.yaml, models/loss_rate.yaml) is validated by a pydantic
dataclass: a wrong key or value stops with one line naming the file, the key and what is
allowed, before any model is fitted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from models.loss_rate import DEFAULT_LOSS_CONFIG_PATH, loss_config_from_yaml
from models.training import DEFAULT_CONFIG_PATH, TrainingConfig, TrainingConfigError


@pytest.mark.parametrize("path", [DEFAULT_CONFIG_PATH, DEFAULT_LOSS_CONFIG_PATH])
def test_packaged_configs_load_and_round_trip(path: Path):
    config = TrainingConfig.from_yaml(path)
    assert TrainingConfig.from_dict(config.to_dict()) == config
    assert isinstance(config.learning_rate, float)
    assert loss_config_from_yaml().lightgbm_overrides["objective"] == "tweedie"


@pytest.mark.parametrize(
    "change, message",
    [
        # a typo is refused, not silently the default; the allowed keys are listed
        ({"learning_rte": 0.1}, "training config: unknown key(s) ['learning_rte']; allowed: bagging_fraction,"),
        # an out-of-time split needs at least one calibration month
        ({"calibration_months": 0}, "calibration_months: 0 is outside [1, inf]"),
        # the blend weight 1 would drop the booster altogether
        ({"logistic_blend": 1.0}, "logistic_blend: 1.0 is outside [0, 1)"),
        # only the calibrators models/calibration.py has
        ({"calibration_method": "beta"}, "calibration_method: expected 'auto', 'isotonic', 'platt' or 'identity', got 'beta'"),
        # rounds are whole
        ({"max_boost_rounds": 2.5}, "max_boost_rounds: expected a whole number, got 2.5"),
        ({"feature_fraction": 0}, "feature_fraction: 0 is outside (0, 1]"),
        ({"monotone_constraints_method": "strict"}, "monotone_constraints_method: expected 'basic', 'intermediate' or 'advanced'"),
    ],
)
def test_a_bad_training_yaml_is_one_line_naming_the_file_and_key(tmp_path: Path, change, message):
    raw = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump({**raw, **change}))
    with pytest.raises(TrainingConfigError) as caught:
        TrainingConfig.from_yaml(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: {message}"), text
    assert "\n" not in text


def test_a_config_built_in_code_is_checked_too():
    with pytest.raises(ValidationError, match="num_leaves"):
        TrainingConfig(num_leaves=1)
    with pytest.raises(ValidationError, match="evaluation_months"):
        dataclasses.replace(TrainingConfig(), evaluation_months=0)
    assert str(TrainingConfig.from_dict({"evaluation_end": "2025-06-30"}).evaluation_end) == "2025-06-30"
