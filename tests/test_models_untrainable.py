"""When a training set cannot give an honest model, the pipeline says why instead of inventing risk."""

from datetime import date

import pandas as pd
import pytest

from models.training_set import MIN_BREACHES_TO_TRAIN, MIN_DEFAULTS_TO_TRAIN, untrainable_default_reason, untrainable_reason


def _frame(months: int, rows_per_month: int, events: int, column: str, complete: bool = True) -> pd.DataFrame:
    n = months * rows_per_month
    return pd.DataFrame({
        "as_of_date": [date(2024, 1 + i // rows_per_month, 28) for i in range(n)],
        "supplier_id": [f"S{i % rows_per_month}" for i in range(n)],
        column: [i < events for i in range(n)],
        "label_complete": complete,
    })


# (frame, reason expected?) per case for the breach model; a comment per case.
@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (_frame(6, 100, MIN_BREACHES_TO_TRAIN, "breach_6m"), None),  # enough months and breaches
        (_frame(6, 100, MIN_BREACHES_TO_TRAIN - 1, "breach_6m"), "breach(es)"),  # one breach short
        (_frame(2, 100, 50, "breach_6m"), "month(s)"),  # too few complete months
        (_frame(6, 100, 50, "breach_6m", complete=False), "known six-month breach outcome"),  # nothing complete
        (_frame(6, 10, 60, "breach_6m"), "every supplier-month"),  # all positive: no signal
    ],
)
def test_breach_training_sets(frame, expected):
    reason = untrainable_reason(frame)
    assert reason is None if expected is None else expected in reason


# Defaults are rarer than breaches: their own, lower minimum, and their own wording.
@pytest.mark.parametrize(
    ("events", "trainable"),
    [
        (MIN_DEFAULTS_TO_TRAIN, True),  # at the minimum
        (MIN_DEFAULTS_TO_TRAIN - 1, False),  # one short
    ],
)
def test_default_training_sets(events, trainable):
    reason = untrainable_default_reason(_frame(6, 100, events, "default_6m"))
    assert (reason is None) is trainable
    if not trainable:
        assert "default(s)" in reason and "disputes" not in reason
