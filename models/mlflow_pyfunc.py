"""The MLflow pyfunc of every registered risk model, logged as code ("models from code").

``models.registry.log_and_register`` logs this file as the model's code and the model's
plain files (``models.model_files``: LightGBM text boosters + JSON) as its ``model_files``
artifact; MLflow runs this file at load time and ``load_context`` reads those files. So a
registered model holds no pickle: loading it runs this reviewed code, never code stored
inside the model. The ``models`` package travels with the model (``code_paths``), so the
folder loads with nothing installed but its ``requirements.txt``.

``predict`` takes a features frame (columns of ``compute_supplier_features``; only the
model's inputs are read) and returns, for a breach or default model, the calibrated
probability per row; for the loss-rate model, a frame of the per-coverage and total loss
rates.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.model_files import MODEL_FILES_ARTIFACT, load_model_files


class RiskModelFromFiles(PythonModel):
    """Wraps the ``BreachRiskModel`` or ``LossRateModel`` saved in the ``model_files`` artifact."""

    model = None  # set by load_context

    def load_context(self, context) -> None:
        self.model = load_model_files(context.artifacts[MODEL_FILES_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ARG002 (pyfunc signature)
        return self.model.pyfunc_predict(pd.DataFrame(model_input))


mlflow.models.set_model(RiskModelFromFiles())
