"""The alignment brief and the docs site, published by their assets from real analytics tables.

One module fixture materialises every registered analysis (the practice effects and the decision
tables), the brief and the docs site on a copy of the session's small marts; a headless chromium
screenshots the brief (test-artifacts/brief-*.png) when it is installed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import dagster as dg
import duckdb
import pytest
from browser import artifact, launch
from fixtures.warehouse import analytics_resources, new_home

from orchestration import analytics
from orchestration.publish import build_publish_assets
from salesalign.publish.brief import build_sections, read_tables, render

SECTION_IDS = ["practices", "icp", "roi", "reps", "alignment", "reallocation", "funnel"]


class _Page(HTMLParser):
    """Collects what the tests look at: element ids, svgs, and every URL the page would fetch."""

    def __init__(self):
        super().__init__()
        self.ids, self.svgs, self.fetches, self.open = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        self.svgs += tag == "svg"
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if (
                tag in ("img", "script", "link", "iframe", "image")
                and value
                and not value.startswith(("data:", "#"))
            ):
                self.fetches.append(value)


@pytest.fixture(scope="module")
def published(small_marts_home, tmp_path_factory):
    home = new_home(tmp_path_factory.mktemp("brief-home"), small_marts_home)
    analytics_keys = [k for a in analytics.assets for k in a.keys]
    _, brief, docs = build_publish_assets(analytics_keys)
    result = dg.materialize([*analytics.assets, brief, docs], resources=analytics_resources(home))
    assert result.success
    return home, result


def test_brief_has_every_section_with_charts_and_fetches_nothing(published):
    home, result = published
    html = (home / "reports" / "alignment-brief.html").read_text()
    page = _Page()
    page.feed(html)
    assert [i for i in page.ids if i in SECTION_IDS] == SECTION_IDS
    assert "Not available in this run" not in html  # the small demo supports every section
    assert page.svgs >= 8  # forest plots, ICP validation, ROI, caterpillar, alignment, reallocations
    assert page.fetches == [] and "<script" not in html  # self-contained: opens without a network
    # every number a leader sees has its interval and the period it describes
    assert html.count("95% CI") > 20 and "deals closed" in html
    # money in the marts' currency (USD here; tests/integration/test_reporting_currency.py: EUR)
    assert "Money is in USD ($), the reporting currency of the marts" in " ".join(html.split())
    assert html.count(", in USD</text>") == 6 and "€" not in html  # every money chart's axis label
    meta = result.asset_materializations_for_node("publish__alignment_brief")[0].metadata
    assert meta["sections_missing"].value == 0 and "| Strategy alignment" in meta["sections"].value
    assert "](data:image/svg+xml;base64," in meta["chart_practices"].value  # charts in the UI too


def test_brief_screenshot_in_headless_chromium(published):
    playwright = pytest.importorskip("playwright.sync_api")
    home, _ = published
    with playwright.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto((home / "reports" / "alignment-brief.html").as_uri())
        page.screenshot(path=artifact("brief-full.png"), full_page=True)
        for section in SECTION_IDS:
            page.locator(f"#{section}").screenshot(path=artifact(f"brief-{section}.png"))
        assert page.locator("section svg").count() >= 8
        browser.close()
    assert artifact("brief-full.png").stat().st_size > 50_000


def test_brief_without_analytics_says_so_instead_of_charts(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        sections = build_sections(read_tables(con))
    assert [s.anchor for s in sections] == SECTION_IDS
    assert all(not s.ok and "not in the warehouse yet" in s.status for s in sections)
    html = render(sections, None, run_id="empty")
    assert "not known yet: the marts are not built" in " ".join(html.split())
    assert html.count("Not available in this run") == len(SECTION_IDS) and "<svg" not in html


def test_docs_site_has_dbt_docs_data_docs_and_an_index(published):
    home, _ = published
    docs = home / "docs"
    dbt_index = (docs / "dbt" / "index.html").read_text()
    assert "fct_deal_margin" in dbt_index  # static: manifest and catalog inlined, opens from disk
    index = (docs / "index.html").read_text()
    for href in ("dbt/index.html", "quality/index.html", "../reports/alignment-brief.html"):
        assert f'href="{href}"' in index
    assert not list(docs.glob(".*.tmp"))
    assert re.search(r"Run [0-9a-f-]{36}", index)


def test_dbt_docs_regenerate_only_when_the_project_or_the_schema_changes(tmp_path, monkeypatch):
    """`dbt docs generate` costs a dbt process per run; the docs hold no data, only the project and
    the warehouse's columns, so the same fingerprint reuses the published docs."""
    from salesalign.publish import docs_site
    from salesalign.publish.docs_site import DBT_DOCS_FILES, docs_fingerprint, publish_dbt_docs

    calls = []

    def fake_dbt(args, *, warehouse_path, reporting_currency, target):  # what `dbt docs generate` writes
        calls.append(args)
        target.mkdir(parents=True)
        for name in DBT_DOCS_FILES:
            (target / name).write_text(f"generated #{len(calls)}")

    monkeypatch.setattr(docs_site, "run_dbt", fake_dbt)
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"metadata": {"generated_at": "1"}, "nodes": {"model.a": {}}}')
    schema = [("marts", "t", "c", "INTEGER")]
    first = docs_fingerprint(manifest, schema)
    publish_dbt_docs(tmp_path, "run1", first)
    manifest.write_text('{"metadata": {"generated_at": "2"}, "nodes": {"model.a": {}}}')  # re-parsed only
    assert docs_fingerprint(manifest, schema) == first
    index = publish_dbt_docs(tmp_path, "run2", docs_fingerprint(manifest, schema))
    assert len(calls) == 1 and index.read_text() == "generated #1"
    changed = docs_fingerprint(manifest, [*schema, ("marts", "t", "d", "VARCHAR")])
    assert changed != first
    publish_dbt_docs(tmp_path, "run3", changed)
    assert len(calls) == 2 and index.read_text() == "generated #2"
    assert not list((tmp_path / "docs").glob(".*.tmp"))
