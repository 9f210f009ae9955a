"""Risk models made for tests: the current feature set, given coefficients."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fraudshop.model.risk import RISK_FEATURE_SET, RISK_FEATURES, RiskModel, model_version


def a_risk_model(trained_at: datetime, intercept: float, coefficients: Sequence[float] | None = None) -> RiskModel:
    """A model of :data:`RISK_FEATURES` trained at ``trained_at``; every coefficient 0 unless given (the
    probability is then the intercept's logistic)."""
    return RiskModel(
        version=model_version(trained_at),
        feature_set=RISK_FEATURE_SET,
        features=RISK_FEATURES,
        intercept=intercept,
        coefficients=tuple(coefficients) if coefficients is not None else (0.0,) * len(RISK_FEATURES),
        trained_at=trained_at,
        as_of=trained_at,
        training_rows=1_000,
        training_frauds=10,
        training_auc=0.9,
        regularization=0.01,
    )
