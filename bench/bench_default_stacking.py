"""Scratch measurement for issue 12: a stacked default model (a per-order failure-rate booster and an
orders-due booster, both with exposure, turned into P(at least 3 due and half failed) by the Skellam form, fed to
the default classifier as three extra inputs). Not part of the pipeline.

    uv run python bench/bench_default_stacking.py /tmp/lz7   [LIGHTGBM_OVERRIDES_JSON]

The training frame is built once and cached as <landing>_train.parquet beside the landing zone.
"""
import sys, pathlib, warnings, dataclasses, json
warnings.filterwarnings('ignore')
import numpy as np, pandas as pd, duckdb, lightgbm as lgb
from sklearn.metrics import roc_auc_score, brier_score_loss
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from models.training import TrainingConfig, train_breach_model, split_out_of_time
from models.training_set import DEFAULT_LABEL_COLUMN
from models.scoring import build_design_matrix
from models.model_features import resolve_model_features
from models.training import category_levels
from features import FEATURES
from features.specs import FeatureSpec
lz = pathlib.Path(sys.argv[1]); overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
cache = lz.parent / (lz.name + '_train.parquet')
if not cache.exists():
    from models.evaluate_synthetic import training_frame_from_landing
    training_frame_from_landing(lz).to_parquet(cache)
tr = pd.read_parquet(cache)
tr['as_of_date'] = pd.to_datetime(tr['as_of_date']).dt.date
truth = duckdb.sql(f"select supplier_id, cast(as_of_date as date) as as_of_date, default_probability_6m from read_parquet('{lz}/_truth/*.parquet')").df()
truth['as_of_date'] = pd.to_datetime(truth['as_of_date']).dt.date
tr = tr.merge(truth, on=['supplier_id','as_of_date'], how='left')
cfg = dataclasses.replace(TrainingConfig.from_yaml(), **overrides)
complete = tr[tr.label_complete] if 'label_complete' in tr else tr
split = split_out_of_time(complete['as_of_date'].unique(), cfg)
train_months = set(split.train); cal_months = set(split.calibration)
feats = resolve_model_features(FEATURES, tr)
cats = category_levels(tr[tr.as_of_date.isin(train_months)], feats)
X = build_design_matrix(tr, feats, cats)
tm = tr.as_of_date.isin(train_months).to_numpy(); cm = tr.as_of_date.isin(cal_months).to_numpy()
due = tr.orders_due_6m.to_numpy(float); failed = tr.failed_orders_due_6m.to_numpy(float)
params = dict(objective='poisson', learning_rate=0.05, num_leaves=15, min_data_in_leaf=100, verbose=-1, num_threads=1, seed=7)
m = due > 0
dtr = lgb.Dataset(X[tm & m], failed[tm & m] / due[tm & m], weight=due[tm & m])
dca = lgb.Dataset(X[cm & m], failed[cm & m] / due[cm & m], weight=due[cm & m], reference=dtr)
rate_b = lgb.train(params, dtr, 2000, valid_sets=[dca], callbacks=[lgb.early_stopping(100, verbose=False)])
dtr2 = lgb.Dataset(X[tm], due[tm]); dca2 = lgb.Dataset(X[cm], due[cm], reference=dtr2)
due_b = lgb.train(params, dtr2, 2000, valid_sets=[dca2], callbacks=[lgb.early_stopping(100, verbose=False)])
rate = np.clip(rate_b.predict(X), 1e-6, 1); mu = due_b.predict(X)
# the label's own form, as the generator's truth computes it: P(F >= O and F + O >= 3)
from synthetic.truth import default_probability_given_means
p_default = default_probability_given_means(np.stack([mu * rate, mu * (1 - rate)]))
tr['stk_fail_rate'] = rate; tr['stk_due'] = mu; tr['stk_pdefault'] = p_default
extra = [FeatureSpec(name=c, window='x', dtype='DOUBLE', definition='x', null_meaning='x', risk_direction=0, model_input=True) for c in ['stk_fail_rate','stk_due','stk_pdefault']]
res = train_breach_model(tr, list(FEATURES) + extra, cfg, label_column=DEFAULT_LABEL_COLUMN, size_non_increasing=True)
ev = res.evaluation_frame; y = ev[DEFAULT_LABEL_COLUMN].astype(int)
print(lz.name, overrides, 'stacked AUC %.4f oracle %.4f brier %.5f oracle %.5f | structural alone AUC %.4f' % (
  roc_auc_score(y, ev.predicted_probability), roc_auc_score(y, ev.default_probability_6m), brier_score_loss(y, ev.predicted_probability),
  brier_score_loss(y, ev.default_probability_6m), roc_auc_score(y, ev.stk_pdefault)))
