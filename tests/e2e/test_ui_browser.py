"""The Dagster UI in a real browser: `make dev`'s webserver on 127.0.0.1, driven by headless chromium.

Opens the global asset lineage (groups extract, quality, dbt_staging, dbt_intermediate, dbt_marts,
analytics, publish), one landing asset and its Great Expectations check, the quarantine ledger of the
quality stage, and saves screenshots under test-artifacts/ (ui-*.png). Skips only when chromium or
Playwright is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from browser import artifact, chromium_path, launch
from fixtures.network import free_port

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
GROUPS = ["extract", "quality", "dbt_staging", "dbt_intermediate", "dbt_marts", "analytics", "publish"]
ASSET = dg.AssetKey(["raw", "accounts"])


def _seed_instance(dagster_home: Path) -> None:
    """A landed batch and its passed check, so the asset page shows what an operator would see."""
    from orchestration.operations import ensure_instance

    ensure_instance(dagster_home)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(ASSET, metadata={"rows_landed": 1000, "rows_total": 1000})
        )
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=ASSET,
                check_name="great_expectations",
                passed=True,
                metadata={"expectations": 31, "rows_validated": 1000},
            )
        )


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    chromium_path()  # skip early, before starting a server, when there is no browser
    pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("ui-home")
    _seed_instance(home / "dagster")
    port = free_port()
    env = {**os.environ, "SALESALIGN_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    log = open(home / "webserver.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(f"{base}/server_info", timeout=5) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"dagster-webserver did not start:\n{(home / 'webserver.log').read_text()[-3000:]}")
        time.sleep(1)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _dismiss_popups(page) -> None:
    """The first visit shows a newsletter dialog (asynchronously): skip it so screenshots show the UI."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.get_by_role("button", name="Skip").click(timeout=8_000)
    except PlaywrightTimeout:
        return  # not shown (already skipped in this browser)
    page.get_by_text("Join the Dagster community").wait_for(state="hidden")


def test_ui_shows_the_asset_graph_an_asset_and_its_checks(webserver):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)

        page.goto(f"{webserver}/asset-groups")
        expect(page.get_by_text("Global asset lineage")).to_be_visible()
        _dismiss_popups(page)
        for group in GROUPS:  # each group is in the sidebar tree and drawn in the graph
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        page.wait_for_timeout(1500)  # let the graph layout settle
        page.screenshot(path=artifact("ui-asset-graph.png"))

        # the extract group opened: the landing assets, each carrying its GX check
        page.goto(f"{webserver}/locations/salesalign/asset-groups/extract")
        expect(page.get_by_text("source_snapshot").first).to_be_visible()
        expect(page.get_by_text("opportunities").first).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=artifact("ui-extract-group.png"))

        page.goto(f"{webserver}/assets/raw/accounts")
        expect(page.get_by_text("raw.accounts: Customer", exact=False)).to_be_visible()
        _dismiss_popups(page)
        expect(page.get_by_text("rows_landed").first).to_be_visible()
        page.screenshot(path=artifact("ui-asset-raw-accounts.png"))

        page.get_by_role("tab", name="Checks").or_(page.get_by_text("Checks", exact=True)).first.click()
        expect(page.get_by_text("great_expectations").first).to_be_visible()
        expect(page.get_by_text("This is a blocking asset check.")).to_be_visible()
        expect(page.get_by_text("Passed").first).to_be_visible()
        page.screenshot(path=artifact("ui-asset-checks.png"))

        # the quality stage: the quarantine ledger the checks fill, between raw and dbt staging
        page.goto(f"{webserver}/assets/quality/quarantined_rows")
        ledger = page.get_by_text("raw rows the Great Expectations checks quarantined", exact=False)
        expect(ledger).to_be_visible()
        _dismiss_popups(page)
        # downstream: dbt staging
        expect(page.get_by_text("stg_crm__opportunities").first).to_be_visible()
        page.screenshot(path=artifact("ui-quality-ledger.png"))
        browser.close()
    for name in (
        "ui-asset-graph.png",
        "ui-extract-group.png",
        "ui-asset-raw-accounts.png",
        "ui-asset-checks.png",
        "ui-quality-ledger.png",
    ):
        assert artifact(name).stat().st_size > 20_000
