"""The demo model sizes its practice arrays from the list of practices, not from a count of its own."""

import numpy as np
import pytest

from salesalign.contract import PRACTICE_ACTIVITY_TYPES, PREVIOUS_ROLES
from salesalign.demo import model as M
from salesalign.demo.presets import preset


def test_the_demo_vocabularies_are_the_contracts():
    assert M.PRACTICES == PRACTICE_ACTIVITY_TYPES
    assert M.ROLES == PREVIOUS_ROLES
    assert len(M.ROLE_SHARE) == len(M.ROLES) and sum(M.ROLE_SHARE) == pytest.approx(1.0)
    assert M.PRACTICES[M.DISCOUNT_PRACTICE] == "deep_discount_approval"


@pytest.fixture
def five_practices(monkeypatch):
    """The contract's practices plus a fifth, `pilot_program`, with parameters of its own."""
    extra = "pilot_program"
    monkeypatch.setattr(M, "PRACTICES", (*PRACTICE_ACTIVITY_TYPES, extra))
    monkeypatch.setitem(M.PRACTICE_WIN_EFFECT, extra, (0.2, 0.2, 0.2))
    monkeypatch.setitem(M.PRACTICE_MINUTES, extra, (120, 30))
    monkeypatch.setitem(M.PRACTICE_TIMING, extra, (0.10, 0.50))
    monkeypatch.setitem(M.PROPENSITY, extra, {"intercept": -1.0})
    return extra


def test_a_fifth_practice_gets_its_own_column_everywhere(five_practices):
    w = M.build_world(preset("tiny"), seed=3)
    a = w.arrays
    n = w.preset.n_opportunities
    for name in ("deal_propensity", "deal_treat", "deal_ptime_us", "deal_pminutes", "deal_peffort"):
        assert a[name].shape == (n, 5), name
    # the fifth practice's activity is drawn like the others: inside each deal's cycle, in 15-minute steps
    created_us = (M.EPOCH_D0 * 86400 + a["deal_created_s"]) * 1_000_000
    assert (a["deal_ptime_us"][:, 4] >= created_us - 1_000_000).all()
    assert (a["deal_pminutes"][:, 4] >= 15).all() and (a["deal_pminutes"][:, 4] % 15 == 0).all()
    assert 0 < a["deal_treat"][:, 4].mean() < 1
    assert np.isfinite(M.practice_logit(a, a["deal_treat"])).all()

