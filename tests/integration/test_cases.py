"""Known cases on the real Cassandra 5 of the local stack: ``fraudshop cases seed`` records the workload's
labelled patterns with their vectors (vector<float, N>, SAI ANN index), ``list`` counts them, and the ANN
search finds a case's nearest cases as an exact search over every case does."""

from __future__ import annotations

import numpy as np
import pytest
from cassandra.cluster import Session

from fraudshop.cli import main as fraudshop_main
from fraudshop.config import Config
from fraudshop.io.cassandra.cases import CaseStore
from fraudshop.lab.patterns import ORDINARY, FraudPattern
from fraudshop.model.cases import CaseLabel, CaseSource, nearest_cases
from tests.integration.conftest import TEST_STACK_SETTINGS

pytestmark = pytest.mark.integration


def test_seeded_cases_are_stored_counted_and_searched_by_similarity(
    isolated_config: Config, cassandra: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = [item for setting in TEST_STACK_SETTINGS for item in ("--set", setting)]
    keyspace = ["--set", f"cassandra.keyspace={isolated_config.cassandra.keyspace}"]
    assert fraudshop_main(["cases", "seed", "--per-pattern", "12", *settings, *keyspace]) == 0
    store = CaseStore(cassandra, isolated_config.cassandra.keyspace)
    cases = store.all_cases()
    assert {case.pattern for case in cases if case.label is CaseLabel.FRAUD} == {p.value for p in FraudPattern}
    assert {case.pattern for case in cases if case.label is CaseLabel.GENUINE} == {ORDINARY}
    assert all(case.source is CaseSource.SEEDED for case in cases)
    assert all(case.account_no is None and case.tranid is None for case in cases)  # a pattern's, not a transaction's

    capsys.readouterr()
    assert fraudshop_main(["cases", "list", *settings, *keyspace]) == 0
    assert f"{len(cases)} case(s)" in capsys.readouterr().out

    # Seeding again rewrites the same rows.
    assert fraudshop_main(["cases", "seed", "--per-pattern", "12", *settings, *keyspace]) == 0
    assert len(store.all_cases()) == len(cases)

    vectors = np.array([case.vector for case in cases], dtype=np.float32)
    exact = nearest_cases(vectors[:20], vectors, k=5)
    for row, probe in enumerate(cases[:20]):
        near = store.nearest(probe.vector, 5)
        assert near[0].case.case_id == probe.case_id and near[0].cosine == pytest.approx(1.0, abs=1e-5)
        # Cassandra's cosines are the exact search's, for the cases both find (ANN may miss one).
        found = {n.case.case_id: n.cosine for n in near}
        expected = {
            cases[index].case_id: float(cosine)
            for index, cosine in zip(exact.indexes[row], exact.similarities[row], strict=True)
        }
        assert len(found.keys() & expected.keys()) >= 4
        for case_id in found.keys() & expected.keys():
            assert found[case_id] == pytest.approx(expected[case_id], abs=1e-4)

    capsys.readouterr()
    assert fraudshop_main(["cases", "similar", cases[0].case_id, "--limit", "3", *settings, *keyspace]) == 0
    assert cases[0].case_id in capsys.readouterr().out
