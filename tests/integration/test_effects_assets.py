"""The effects assets on the default demo marts (seed 42, as `make run`): truth recovered, tables written."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from fixtures.warehouse import analytics_resources, new_home, query

from orchestration.analytics import ASSETS
from salesalign.analytics import registry

EFFECTS = ASSETS["practice_effects"]


@pytest.fixture(scope="module")
def effects_home(default_marts_home, tmp_path_factory):
    """A copy of the default demo marts with the effects materialised."""
    home = new_home(tmp_path_factory.mktemp("effects-home"), default_marts_home)
    result = dg.materialize([EFFECTS], resources=analytics_resources(home))
    assert result.success
    return home


@pytest.fixture(scope="module")
def truth(default_drop):
    return json.loads((default_drop / "truth.json").read_text())["practices"]


def test_tables_have_every_contract_column(effects_home):
    for table in registry.analysis("practice_effects").tables:
        got = query(effects_home, f"select * from analytics.{table.name} limit 0").columns.tolist()
        assert got == table.column_names, table.name
    n = query(effects_home, "select count(*) as n from analytics.practice_effects").n[0]
    assert n == 4 * 3 * 2 * 3  # practices x outcomes x estimands x estimators
    bal = query(effects_home, "select * from analytics.effect_diagnostics where kind = 'balance'")
    assert len(bal) > 0 and bal.value_after.abs().max() < 0.1


def test_aipw_intervals_cover_the_planted_truth(effects_home, truth):
    pe = query(effects_home, "select * from analytics.practice_effects where estimator = 'aipw'")
    for r in pe[pe.outcome.isin(["win", "contribution_margin"])].itertuples():
        true = truth[r.practice][r.outcome]["ate" if r.estimand == "ATE" else "att"]
        assert r.status == "ok"
        assert r.ci_low <= true <= r.ci_high, (r.practice, r.outcome, r.estimand, r.estimate, true)


def test_naive_lies_outside_for_confounded_practices(effects_home, truth):
    pe = query(
        effects_home, "select * from analytics.practice_effects where estimator = 'aipw' and estimand = 'ATE'"
    )
    confounded = 0
    for r in pe[pe.outcome.isin(["win", "contribution_margin"])].itertuples():
        t = truth[r.practice][r.outcome]
        if abs(t["naive_diff"] - t["ate"]) > 3 * t["naive_se"]:  # confounded per the planted truth
            confounded += 1
            assert not (r.ci_low <= r.naive_difference <= r.ci_high), (r.practice, r.outcome)
            assert r.naive_confounded
    assert confounded >= 4


def test_segments_are_reported_with_adjusted_intervals(effects_home):
    seg = query(effects_home, "select * from analytics.practice_effects_by_segment")
    assert {"ok"} <= set(seg.status) and seg.status.str.startswith("too few deals").any()
    ok = seg[seg.status == "ok"]
    assert ok.ci_method.str.startswith("bonferroni").all() and (ok.ci_high > ok.ci_low).all()


def test_missing_marts_give_status_rows_not_a_crash(tmp_path):
    result = dg.materialize([EFFECTS], resources=analytics_resources(tmp_path))
    assert result.success
    pe = query(tmp_path, "select * from analytics.practice_effects")
    assert len(pe) > 0 and (pe.verdict == "not estimable").all()
    assert pe.status.str.contains("marts not available").all()
