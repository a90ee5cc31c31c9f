"""Reason codes: stable, only from features that raise risk, readable."""

import numpy as np
import pytest

from demo_frames import example_training_frame
from models.model_features import ModelFeature
from models.reason_codes import codes_for, top_reason_codes
from models.training import TrainingConfig, train_breach_model


@pytest.fixture(scope="module", params=[0.0, 0.5], ids=["booster", "logistic_blend"])
def trained(request):
    frame = example_training_frame(n_suppliers=300, months=10, seed=11)
    config = TrainingConfig(max_boost_rounds=100, min_data_in_leaf=40, logistic_blend=request.param)
    result = train_breach_model(frame, None, config)
    return frame, result.model


def test_codes_are_deterministic_and_independent_of_row_order(trained):
    frame, model = trained
    rows = frame.head(500)
    codes = model.reason_codes(rows, k=3)
    assert codes == model.reason_codes(rows, k=3)
    shuffled = rows.sample(frac=1.0, random_state=1)
    by_index = dict(zip(shuffled.index, model.reason_codes(shuffled, k=3), strict=True))
    assert [by_index[i] for i in rows.index] == codes


def test_only_positive_contributors_become_codes_in_contribution_order(trained):
    frame, model = trained
    rows = frame.head(400)
    contributions = model.contributions(rows)[:, : len(model.features)]
    codes = model.reason_codes(rows, k=3)
    design = model.design_matrix(rows)
    for i, row_codes in enumerate(codes):
        positive = [j for j in np.argsort(-contributions[i], kind="stable") if contributions[i, j] > 0]
        contributing_codes = {}
        for j in positive:
            feature = model.features[j]
            options = codes_for(feature)
            if feature.categorical:
                code = options.high
            elif np.isnan(design.iloc[i, j]):
                code = options.unknown
            elif feature.risk_direction == -1:
                code = options.low  # a safe-direction feature can only hurt by being low
            elif feature.risk_direction == 1:
                code = options.high
            else:
                code = options.high if design.iloc[i, j] > model.medians[feature.name] else options.low
            contributing_codes.setdefault(code, contributions[i, j])
        assert row_codes == list(contributing_codes)[:3]


def test_tie_break_follows_feature_order_and_twins_share_a_code():
    features = [
        ModelFeature("dispute_ratio_6m", 1, False),
        ModelFeature("dispute_ratio_6m_shrunk", 1, False),
        ModelFeature("tenure_months", -1, False),
        ModelFeature("response_rate_6m", -1, False),
        ModelFeature("country", 0, True),
    ]
    import pandas as pd

    design = pd.DataFrame({"dispute_ratio_6m": [0.2], "dispute_ratio_6m_shrunk": [0.1], "tenure_months": [2.0],
                           "response_rate_6m": [np.nan], "country": ["CN"]})
    contributions = np.array([[0.5, 0.5, 0.3, 0.3, -0.1, -2.0]])  # last column: bias
    assert top_reason_codes(contributions, design, features, {}, k=3) == [
        ["DISPUTE_RATIO_HIGH", "HISTORY_SHORT", "RESPONSE_RATE_UNKNOWN"]
    ]
    assert top_reason_codes(-contributions, design, features, {}, k=3) == [["COUNTRY_RISK"]]


def test_riskiest_supplier_shows_expected_codes(trained):
    frame, model = trained
    row = frame.head(1).assign(dispute_ratio_6m=0.5, on_time_shipment_rate_6m=0.3, response_rate_6m=0.1)
    codes = model.reason_codes(row, k=5)[0]
    assert {"ON_TIME_SHIPMENT_LOW", "RESPONSE_RATE_LOW"} & set(codes)
    assert len(codes) <= 5 and len(set(codes)) == len(codes)
