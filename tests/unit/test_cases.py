"""Known cases (model/cases.py): exact nearest-case search and the similarity score."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from fraudshop.model.cases import (
    CaseLabel,
    CaseSource,
    FraudCase,
    KnownCases,
    nearest_cases,
    risk_scores,
    scores_against,
    seeded_case_id,
    transaction_case_id,
)


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, 30)).astype(np.float32)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32)


def test_the_nearest_cases_are_those_a_full_sort_finds_nearest_first() -> None:
    vectors, cases = unit_vectors(300, 1), unit_vectors(2_000, 2)
    found = nearest_cases(vectors, cases, k=5, chunk=64)  # several chunks
    similarity = vectors @ cases.T
    expected = np.argsort(-similarity, axis=1, kind="stable")[:, :5]
    assert (found.indexes == expected).all()
    assert np.allclose(found.similarities, np.take_along_axis(similarity, expected, axis=1))
    assert (np.diff(found.similarities, axis=1) <= 0).all()


def test_equally_similar_cases_come_in_their_order() -> None:
    case = unit_vectors(1, 3)
    found = nearest_cases(case, np.vstack([-case, case, case, case]), k=3)
    assert found.indexes.tolist() == [[1, 2, 3]]


def test_fewer_cases_than_asked_for_leave_the_rest_empty() -> None:
    found = nearest_cases(unit_vectors(2, 4), unit_vectors(3, 5), k=5)
    assert (found.indexes[:, 3:] == -1).all() and np.isnan(found.similarities[:, 3:]).all()
    assert (found.indexes[:, :3] >= 0).all()
    none = nearest_cases(unit_vectors(2, 4), np.empty((0, 30), np.float32), k=5)
    assert (none.indexes == -1).all() and risk_scores(none.similarities, none.indexes >= 0).tolist() == [0.0, 0.0]


def test_the_score_is_the_mean_similarity_times_the_share_of_fraud() -> None:
    similarities = np.array([[0.9, 0.8, np.nan], [0.9, 0.7, 0.5], [-0.2, 0.4, np.nan]], dtype=np.float32)
    is_fraud = np.array([[True, True, False], [True, False, True], [True, True, False]])
    scores = risk_scores(similarities, is_fraud)
    # 0.85 x 2/2; 0.7 x 2/3; a negative similarity counts as zero: 0.2 x 2/2
    assert scores == pytest.approx([0.85, 0.7 * 2 / 3, 0.2], abs=1e-6)


def test_case_ids_name_what_the_case_is() -> None:
    at = datetime(2026, 3, 10, 12, 0, 0, 123_456, tzinfo=UTC)
    same_millisecond = at.replace(microsecond=123_000)
    assert transaction_case_id("A", at, "t") == transaction_case_id("A", same_millisecond, "t")
    assert transaction_case_id("A", at, "t") != transaction_case_id("A", at, "u")
    assert seeded_case_id("card_testing", 1) != seeded_case_id("card_testing", 2)


def test_scores_against_known_cases_name_the_nearest_and_weigh_genuine_ones_down() -> None:
    vectors = unit_vectors(4, 6)
    at = datetime(2026, 3, 10, tzinfo=UTC)

    def case(number: int, vector: np.ndarray, label: CaseLabel) -> FraudCase:
        return FraudCase(f"c{number}", tuple(map(float, vector)), label, CaseSource.SEEDED, None, at, "test")

    # Each transaction's own vector is a case: fraud for the first two, genuine for the others.
    labels = [CaseLabel.FRAUD, CaseLabel.FRAUD, CaseLabel.GENUINE, CaseLabel.GENUINE]
    cases = KnownCases.of([case(n, vectors[n], label) for n, label in enumerate(labels)])
    scores = scores_against(vectors, cases, k=1)
    assert [ids[0] for ids in scores.nearest_case_ids] == ["c0", "c1", "c2", "c3"]
    assert scores.risk_scores == pytest.approx([1.0, 1.0, 0.0, 0.0], abs=1e-6)
    empty = scores_against(vectors, KnownCases.of([]), k=5)
    assert empty.risk_scores.tolist() == [0.0] * 4 and empty.nearest_case_ids == [[]] * 4
