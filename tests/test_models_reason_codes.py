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


def _reason_codes_by_hand(contributions, code_rows, k):
    """The definition, row by row: positive contributions by decreasing value (ties: feature
    order), each code once, at most k."""
    out = []
    for values, codes in zip(contributions, code_rows):
        ranked = sorted((j for j in range(len(codes)) if values[j] > 0), key=lambda j: (-values[j], j))
        row: list[str] = []
        for j in ranked[: 3 * k]:  # top_reason_codes looks 3k deep (twins share a code)
            if codes[j] not in row and len(row) < k:
                row.append(codes[j])
        out.append(row)
    return out


@pytest.mark.parametrize("k", [1, 3, 5])
def test_compiled_selection_matches_the_definition_with_ties_missing_values_and_twins(k):
    import pandas as pd

    rng = np.random.default_rng(k)
    features = [ModelFeature(f"rate_{j}", 1, False) for j in range(6)] + [
        ModelFeature("dispute_ratio_6m", 1, False), ModelFeature("dispute_ratio_6m_shrunk", 1, False)]
    n = 4000
    # few distinct values: many ties; NaN and non-positive values are never reasons
    contributions = rng.choice([np.nan, -1.0, 0.0, 0.25, 0.5, 1.0], size=(n, len(features) + 1))
    design = pd.DataFrame({f.name: np.ones(n) for f in features})
    codes = [codes_for(f).high for f in features]
    assert top_reason_codes(contributions, design, features, {}, k=k) == _reason_codes_by_hand(
        contributions[:, :-1], [codes] * n, k)
