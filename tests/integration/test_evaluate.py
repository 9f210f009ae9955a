"""``fraudshop evaluate``'s smoke run on the real stack: a week of the handbook's labelled transactions (500
customers) replayed through Kafka, the job and Cassandra, labels fed back two days late, the risk model
trained as at the test's start with Spark MLlib, and every test transaction's stored scores measured."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fraudshop.config import Config
from fraudshop.lab.evaluation.publish import render_accuracy_block
from fraudshop.lab.evaluation.replay import SIGNALS, EvaluationError, EvaluationPlan, run_evaluation
from tests.integration.conftest import config_for_tests

pytestmark = pytest.mark.integration

HANDBOOK = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "card-fraud-handbook"


def test_a_week_of_labelled_transactions_is_replayed_scored_and_measured(stack_config: Config, tmp_path: Path) -> None:
    plan = EvaluationPlan(
        data=HANDBOOK,
        first_day=date(2018, 4, 1),
        test_from=date(2018, 4, 6),
        test_to=date(2018, 4, 7),
        customers=500,
        seed=3,
        feedback_delay_days=2,
        warm_up_days=1,
    )
    figures = run_evaluation(config_for_tests("job.trigger_interval=1 second"), plan, tmp_path)

    assert figures["replayed"]["days"] == 7 and figures["replayed"]["transactions"] > 5_000
    # Labels of days 1 to 5 came back (each day's at the end of the day two days later), with as many genuine cases.
    assert figures["replayed"]["feedback_cases"] > 0 and figures["replayed"]["feedback_cases"] % 2 == 0
    model = figures["model"]
    assert model["training_days"] == 2 and model["training_frauds"] > 0  # April 2 and 3, after a day's warm-up
    assert set(model["coefficients"]) >= {"similarity", "log_amount", "log_merchant_frauds_last_month"}
    test = figures["test"]
    assert test["measured_transactions"] + test["known_compromised_excluded"] == test["transactions"] > 1_000
    assert set(figures["signals"]) == set(SIGNALS)
    for name, signal in figures["signals"].items():
        assert 0 <= signal["average_precision"] <= 1, name
        assert signal["constant"] == (name == "profile_change_window")  # the data has no profile change
    # Amounts over 220 are fraud in this data (scenario 1): the amount alone ranks better than chance.
    assert figures["signals"]["amount"]["auc_roc"] > 0.6
    assert figures["signals"]["risk_model"]["card_precision_at_100"] is not None
    assert 0 < figures["calibration"]["mean_probability"] < 1
    assert "risk model (the combined decision)" in render_accuracy_block(figures)


def test_a_test_period_without_days_to_train_on_is_refused(stack_config: Config, tmp_path: Path) -> None:
    plan = EvaluationPlan(
        data=HANDBOOK, first_day=date(2018, 4, 1), test_from=date(2018, 4, 3), test_to=date(2018, 4, 3)
    )
    with pytest.raises(EvaluationError, match="no day to train on"):
        run_evaluation(config_for_tests(), plan, tmp_path)
