"""Pure helpers of the pipeline benchmark (bench/pipeline.py): no processes, no warehouse."""

import math

from bench import pipeline as bench


def test_stage_of_maps_every_kind_of_step():
    assert bench.stage_of("extract__source_snapshot") == "land"
    assert bench.stage_of("raw__activities") == "land"
    assert bench.stage_of("raw__activities_great_expectations") == "quality"
    assert bench.stage_of("quality__quarantined_rows") == "quality"
    assert bench.stage_of("dbt_models") == "dbt"
    assert bench.stage_of("publish__alignment_brief") == "publish"
    assert bench.stage_of("practice_effects") == "analytics"
    assert bench.stage_of("rep_ramp") == "analytics"  # one multi-asset per analysis, named after it


def test_parse_progress_reads_start_and_end_lines_only():
    assert bench.parse_progress("[ 0/41]    3.2s  raw__accounts ...") == ("raw__accounts", "start")
    assert bench.parse_progress("[12/41]   31.2s  dbt_models done") == ("dbt_models", "end")
    assert bench.parse_progress("[12/41]   31.2s  dbt_models FAILED") == ("dbt_models", "end")
    assert bench.parse_progress("[ 7/41]   31.2s    raw.activities: 102,182 rows landed ...") is None
    assert bench.parse_progress("salesalign run x: SUCCESS in 3.0 s") is None


def test_parse_stat_handles_spaces_in_the_command_name():
    fields = ["S", "7"] + ["0"] * 9 + ["100", "50", "30", "20"] + ["0"] * 6 + ["2500"] + ["0"] * 10
    text = "123 (my (odd) proc) " + " ".join(fields)
    assert bench.parse_stat(text) == (7, 200, 2500)


def test_tree_pids_walks_descendants_only():
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1, 30: 20}
    assert bench.tree_pids(parents, 10) == {10, 11, 12}


def test_window_stats_interpolates_cpu_and_takes_the_peak():
    samples = [(0.0, 0.0, 100), (1.0, 1.0, 300), (2.0, 3.0, 200)]
    got = bench.window_stats(samples, 0.5, 1.5)
    assert got["cpu_s"] == 1.5
    assert got["peak_rss_mb"] == round(300 / 2**20)


def test_stage_windows_adds_startup_and_teardown():
    events = [
        (2.0, "raw__accounts", "start"),
        (3.0, "raw__accounts", "end"),
        (3.0, "dbt_models", "start"),
        (7.0, "dbt_models", "end"),
    ]
    w = bench.stage_windows(events, 0.0, 8.0)
    assert w["land"] == [(2.0, 3.0)] and w["dbt"] == [(3.0, 7.0)]
    assert w["startup"] == [(0.0, 2.0)] and w["teardown"] == [(7.0, 8.0)]


def test_scaling_exponent_and_verdicts():
    assert math.isclose(bench.scaling_exponent(10, 1, 100, 10), 1.0)
    assert bench.verdict(1.2, 1.5) == "PASS"
    assert bench.verdict(2.0, 1.5) == "FAIL"
    assert bench.verdict(4.0, 3.0, at_least=True) == "PASS"
    assert bench.verdict(None, 3.0) == "n/a"


def test_model_order_puts_parents_first():
    manifest = {
        "nodes": {
            "model.p.c": {"resource_type": "model", "depends_on": {"nodes": ["model.p.b"]}, "name": "c"},
            "model.p.a": {"resource_type": "model", "depends_on": {"nodes": []}, "name": "a"},
            "model.p.b": {
                "resource_type": "model",
                "depends_on": {"nodes": ["model.p.a", "source.p.x"]},
                "name": "b",
            },
            "test.p.t": {"resource_type": "test", "depends_on": {"nodes": ["model.p.c"]}, "name": "t"},
        }
    }
    assert [n["name"] for n in bench._model_order(manifest)] == ["a", "b", "c"]
