"""docs/python-api.md: every code block runs, in order, in one session, against a tiny demo in a temp
folder, and leaves what the page says it does (a landed warehouse, passing checks, marts, analytics
tables, the brief and the exports)."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from salesalign.settings import REPO

PAGE = REPO / "docs" / "python-api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def code_blocks(text: str) -> list[str]:
    """The page's ```python blocks, in order."""
    return BLOCK.findall(text)


def test_the_page_has_an_example_for_every_entry_point():
    text = "\n".join(code_blocks(PAGE.read_text(encoding="utf-8")))
    for name in (
        "demo.generate", "land_source", "FileDropSource", "validate_raw_batch", "run_dbt", "run_analysis",
        "estimate_all", "write_brief", "publish_bi_outputs",
    ):
        assert f"{name}(" in text, name


@pytest.mark.slow
def test_every_example_runs_and_does_what_the_page_says(tmp_path, monkeypatch, capsys):
    for name in ("causal.yml", "strategy.yml"):  # the examples name the repository's files
        shutil.copy(REPO / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    session: dict = {"__name__": "python_api_page"}
    blocks = code_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) == 7
    for i, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{PAGE.name}, example {i}", "exec"), session)
        except Exception as exc:
            raise AssertionError(f"example {i} of {PAGE.name} fails: {exc!r}\n{block}") from exc
    out = capsys.readouterr().out

    home = tmp_path / "salesalign-home"
    assert "400 opportunities" in out  # the tiny preset
    assert {r.table for r in session["loads"]} >= {"accounts", "opportunities", "invoices", "fx_rates"}
    assert session["report"].passed and session["report"].rows == 400
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        sql = "select count(distinct opportunity_id) from raw.opportunities where stage like 'closed%'"
        assert 0 < session["deals"][0] <= con.execute(sql).fetchone()[0]
        assert con.execute("select count(*) from analytics.rep_variance_summary").fetchone()[0] == 2
    assert set(session["run"].tables) == {"rep_performance", "rep_variance_summary"}
    # the synthetic effect is 2: AIPW recovers it, the naive difference is confounded upwards
    aipw = session["aipw"]
    assert aipw.ci[0] < 2.0 < aipw.ci[1] and session["naive"] > aipw.ci[1]
    brief = session["brief"].path.resolve()
    assert brief == home / "reports" / "alignment-brief.html" and brief.stat().st_size > 0
    assert (home / "exports" / "manifest.json").is_file() and (home / "serving.duckdb").is_file()
    assert all((home / t.file).is_file() for t in session["published"])
