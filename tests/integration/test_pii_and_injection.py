"""Personal data never reaches what is published; spreadsheet formulas and HTML in text are inert.

One module fixture runs the whole pipeline (`salesalign run --source files`) on the tiny demo
company with hostile text planted in fields that reach published tables: five accounts and five
reps are named `=HYPERLINK("http://evil","x")`, `+cmd|' /C calc'!A0`, `@SUM(1)`, `-2+3` and
`<script>alert(1)</script>`, and two industries are renamed to the first and the last (so they
reach segment ids, the decision tables and the brief).

- Personal data: the demo's contacts (`salesalign/demo/generator.py`: first and last name from
  name pools, e-mail `first.last@<account>.example.com`, phone `+1|+49|+61 555 NNNNNNN`) are looked
  for, by their actual values and by the generator's e-mail and phone patterns, in every column of
  every marts.*/analytics.* table of the warehouse and of serving.duckdb, every Parquet and CSV
  export, the manifest, the brief and the docs sites (dbt docs with its catalog, the index, the
  Great Expectations Data Docs).
- Formula injection: CSV cells of text columns starting with = + - @ tab CR carry a leading `'`;
  the Parquet files keep the original value (typed data, not a spreadsheet); numbers are untouched.
- The brief escapes text: the planted names are shown as text, never as markup.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from fixtures.cli import SALESALIGN

REPO = Path(__file__).resolve().parents[2]
PAYLOADS = (
    '=HYPERLINK("http://evil","x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1)",
    "-2+3",
    "<script>alert(1)</script>",
)
FORMULA_PAYLOADS = PAYLOADS[:4]
INDUSTRY_PAYLOADS = {"retail": PAYLOADS[0], "healthcare": PAYLOADS[4]}
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
DEMO_EMAIL = r"[a-z]+\.[a-z]+@[a-z0-9-]+\.example\.com"
PHONE = r"\+(1|49|61) 555 [0-9]{7}"


def _plant(drop: Path) -> None:
    """Hostile text in account names, rep names and two industries of the drop (Parquet, in place)."""
    names = ", ".join(f"({i}, {_sql(p)})" for i, p in enumerate(PAYLOADS))
    with duckdb.connect() as con:
        for table, key, column in (
            ("accounts", "account_id", "account_name"),
            ("reps", "rep_id", "rep_name"),
        ):
            path = drop / f"{table}.parquet"
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet('{path}')")
            con.execute(
                f"UPDATE {table} SET {column} = p.v FROM (VALUES {names}) p(i, v), "
                f"(SELECT {key} AS k, row_number() OVER (ORDER BY {key}) - 1 AS i FROM {table}) n "
                f"WHERE n.k = {table}.{key} AND n.i = p.i"
            )
            if table == "accounts":
                for industry, payload in INDUSTRY_PAYLOADS.items():
                    con.execute("UPDATE accounts SET industry = ? WHERE industry = ?", [payload, industry])
            con.execute(f"COPY {table} TO '{path}' (FORMAT parquet)")


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from salesalign import demo

    drop = tmp_path_factory.mktemp("pii-drop")
    demo.generate("tiny", 42, drop)
    _plant(drop)
    home = tmp_path_factory.mktemp("pii-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESALIGN_", "DAGSTER_"))}
    proc = subprocess.run(
        # the demo company's data as a file drop: its strategy and causal assumptions are given
        [str(SALESALIGN), "run", "--source", "files", "--path", str(drop), "--home", str(home),
         "--strategy", str(REPO / "strategy.yml"), "--causal", str(REPO / "causal.yml")],
        cwd=REPO,
        env={**env, "GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return drop, home


@pytest.fixture(scope="module")
def people(run):
    """The demo drop's contacts: full names, e-mails, phones; and the reps' names (employees)."""
    drop, _ = run
    with duckdb.connect() as con:
        contacts = con.execute(
            "SELECT first_name || ' ' || last_name, email, phone "
            f"FROM read_parquet('{drop}/contacts.parquet')"
        ).fetchall()
        reps = {
            r[0] for r in con.execute(f"SELECT rep_name FROM read_parquet('{drop}/reps.parquet')").fetchall()
        }
    needles = sorted({v for row in contacts for v in row if v})
    return contacts, needles, reps


# ------------------------------------------------------------------ scanning


def _scan_relation(con, relation: str, needles: list[str]) -> list[tuple[str, str, int]]:
    """(column, what, rows) for every column of `relation` holding a needle or a pattern."""
    con.execute("CREATE OR REPLACE TEMP TABLE needles AS SELECT unnest(?::VARCHAR[]) AS v", [needles])
    hits = []
    for (col,) in con.execute(f"SELECT column_name FROM (DESCRIBE SELECT * FROM {relation})").fetchall():
        text = f'CAST("{col}" AS VARCHAR)'
        row = con.execute(
            f"SELECT count(*) FILTER (WHERE regexp_matches({text}, '{EMAIL}')), "
            f"count(*) FILTER (WHERE regexp_matches({text}, '{PHONE}')) FROM {relation}"
        ).fetchone()
        hits += [(col, what, n) for what, n in zip(("email pattern", "phone pattern"), row, strict=True) if n]
        for needle, n in con.execute(
            f"SELECT needles.v, count(*) FROM {relation} "
            f"JOIN needles ON contains({text}, needles.v) GROUP BY 1"
        ).fetchall():
            hits.append((col, needle, n))
    return hits


def _scan_text(text: str, needles: list[str]) -> list[str]:
    text = html.unescape(text)
    found = [f"email pattern {m}" for m in re.findall(DEMO_EMAIL, text)]
    found += [f"phone pattern {m.group(0)}" for m in re.finditer(PHONE, text)]
    return found + [n for n in needles if n in text]


def _published_relations(home: Path) -> list[tuple[str, str]]:
    """(where, relation SQL) for every published table and every export file."""
    relations = []
    for db in ("warehouse.duckdb", "serving.duckdb"):
        with duckdb.connect(str(home / db), read_only=True) as con:
            tables = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE schema_name IN ('marts', 'analytics')"
            ).fetchall()
        relations += [(f"{db}:{s}.{t}", f"{db.split('.')[0]}.{s}.{t}") for s, t in tables]
    for path in sorted((home / "exports").rglob("*.parquet")):
        relations.append((str(path.relative_to(home)), f"read_parquet('{path}')"))
    for path in sorted((home / "exports").rglob("*.csv")):
        relations.append((str(path.relative_to(home)), f"read_csv('{path}', all_varchar = true)"))
    return relations


@pytest.mark.slow  # a whole run of the pipeline
def test_no_personal_data_in_published_outputs(run, people):
    _, home = run
    contacts, needles, reps = people
    assert len(contacts) > 200 and len(needles) > 3 * 200 - 50  # names, e-mails and phones of the demo
    relations = _published_relations(home)
    hits, columns, allowed = [], 0, []
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{home / 'warehouse.duckdb'}' AS warehouse (READ_ONLY)")
        con.execute(f"ATTACH '{home / 'serving.duckdb'}' AS serving (READ_ONLY)")
        for where, relation in relations:
            columns += len(con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall())
            for col, what, n in _scan_relation(con, relation, needles):
                # a rep (an employee, published by design in dim_reps.rep_name) may share a contact's name
                if col == "rep_name" and what in reps:
                    allowed.append((where, what))
                    continue
                hits.append(f"{where}.{col}: {what} ({n} rows)")
        # control: the same scan finds every contact in raw.contacts (where personal data is kept)
        raw = _scan_relation(con, "warehouse.raw.contacts", needles)
        assert {(c, w) for c, w, _ in raw} >= {("email", "email pattern"), ("phone", "phone pattern")}
        assert {w for c, w, _ in raw if c in ("email", "phone")} >= {e for _, e, p in contacts} | {
            p for _, e, p in contacts
        }
    files = [home / "reports" / "alignment-brief.html", home / "exports" / "manifest.json"]
    files += sorted(p for p in (home / "docs").rglob("*") if p.is_file() and p.suffix in (".html", ".json"))
    for path in files:
        hits += [
            f"{path.relative_to(home)}: {h}" for h in _scan_text(path.read_text(errors="replace"), needles)
        ]
    assert len(relations) >= 4 * 23 and columns > 1500 and len(files) >= 6
    assert hits == []
    print(
        f"PII scan: {len(relations)} relations, {columns} columns, {len(files)} files, "
        f"{len(needles)} personal values + 2 patterns: 0 hits; "
        f"{len({w for _, w in allowed})} rep name(s) equal to a contact's, in dim_reps.rep_name "
        f"({len(allowed)} published copies)"
    )
    assert _scan_text("write to anna.lee@acc-00001.example.com or +49 555 0012345", []) == [
        "email pattern anna.lee@acc-00001.example.com",
        "phone pattern +49 555 0012345",
    ]  # control: the patterns match the generator's format


@pytest.mark.slow  # a whole run of the pipeline
def test_no_personal_data_in_the_run_event_log(run, people):
    """Dagster's events (landing previews, check results, logs) mask the contract's personal columns."""
    import dagster as dg

    _, home = run
    _, needles, _ = people
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = instance.get_runs()
        events = "\n".join(dg.serialize_value(e) for r in runs for e in instance.all_logs(r.run_id))
    assert len(runs) == 1 and "| CON-00000000 | ACC-0000000 | *** | *** | *** | *** |" in events  # masked
    assert _scan_text(events, needles) == []


def _csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as f:  # as Excel reads it: BOM, then UTF-8
        return list(csv.DictReader(f))


@pytest.mark.slow  # a whole run of the pipeline
def test_csv_neutralises_formulas_and_parquet_keeps_the_original(run):
    _, home = run
    exports = home / "exports"
    assert (exports / "marts" / "dim_accounts.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    with duckdb.connect() as con:
        for table, column in (("dim_accounts", "account_name"), ("dim_reps", "rep_name")):
            parquet = {
                v
                for (v,) in con.execute(f"SELECT {column} FROM '{exports}/marts/{table}.parquet'").fetchall()
            }
            cells = {r[column] for r in _csv_rows(exports / "marts" / f"{table}.csv")}
            for payload in PAYLOADS:
                assert payload in parquet, (table, payload)  # typed data keeps the value as it is
                expected = "'" + payload if payload in FORMULA_PAYLOADS else payload
                assert expected in cells and (payload not in cells or payload == expected), (table, payload)
        industries = {r["industry"] for r in _csv_rows(exports / "marts" / "dim_accounts.csv")}
        assert "'" + PAYLOADS[0].lower() in industries  # staging lower-cases industries

        # every CSV: no text cell a spreadsheet would evaluate; each equals its Parquet value
        manifest = json.loads((exports / "manifest.json").read_text())
        negatives = 0
        for entry in manifest["tables"]:
            csv_path, parquet_path = home / entry["csv"], home / entry["file"]
            rows = _csv_rows(csv_path)
            assert len(rows) == entry["rows"]
            text_cols = set(entry["csv_neutralised_columns"])
            assert text_cols == {c["name"] for c in entry["columns"] if c["type"] == "VARCHAR"}
            original = con.execute(f"SELECT * FROM '{parquet_path}'").fetchall()
            names = [c["name"] for c in entry["columns"]]
            for row, values in zip(rows, original, strict=True):
                for name, value in zip(names, values, strict=True):
                    cell = row[name]
                    if name in text_cols and value is not None:
                        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (
                            entry["table"],
                            name,
                            cell,
                        )
                        assert cell == ("'" + value if value[:1] in "=+-@\t\r" and value else value)
                    elif isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                        assert cell.startswith("-") and float(cell) == pytest.approx(value)  # untouched
                        negatives += 1
        assert negatives > 100  # negative margins are numbers: written as they are
        assert "formula_neutralisation" in manifest["csv"]


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.hrefs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [v for k, v in attrs if k in ("href", "src") and v]

    def handle_data(self, data):
        self.text.append(data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


@pytest.mark.slow  # a whole run of the pipeline
def test_brief_of_the_run_shows_planted_segments_as_text(run):
    _, home = run
    page = (home / "reports" / "alignment-brief.html").read_text()
    parsed = _parse(page)
    assert "script" not in parsed.tags and "<script>alert(1)</script>" not in page
    assert not [h for h in parsed.hrefs if "evil" in h]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # a planted industry's segment, as text
    assert "<script>alert(1)</script>" in "".join(parsed.text)  # what a reader sees


@pytest.mark.slow  # a whole run of the pipeline
def test_brief_escapes_every_text_it_shows(run, tmp_path):
    """Every label the brief draws from a table (segments, ICP segments, reps, practices, targets),
    replaced by hostile text, is shown escaped: no tag, no link, the text visible as it is."""
    from salesalign.publish.brief import build_sections, read_tables, write_brief

    _, home = run
    shutil.copy(home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    plants = {
        "roi_by_segment": ["segment_id"],
        "icp_segments": ["icp_segment"],
        "rep_performance": ["rep_id"],
        "practice_effects": ["practice"],
        "roi_by_practice": ["practice"],
        "strategy_alignment": ["target"],
        "practice_alignment": ["target", "practice"],
        "effort_reallocation": ["from_target", "to_target"],
    }
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        for table, columns in plants.items():
            for column in columns:
                # each distinct value becomes "<payload> <n>": still distinct, joins still match
                con.execute(
                    f"UPDATE analytics.{table} SET {column} = p.v || ' ' || d.n FROM "
                    f"(SELECT {column} AS old, dense_rank() OVER (ORDER BY {column}) AS n "
                    f"FROM (SELECT DISTINCT {column} FROM analytics.{table})) d, "
                    f"(SELECT unnest(?::VARCHAR[]) AS v, generate_subscripts(?::VARCHAR[], 1) AS i) p "
                    f"WHERE d.old = analytics.{table}.{column} AND p.i = 1 + (d.n % {len(PAYLOADS)})",
                    [list(PAYLOADS), list(PAYLOADS)],
                )
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        brief = write_brief(con, tmp_path, "escape-test")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        before = build_sections(read_tables(con))
    page = brief.path.read_text()
    parsed = _parse(page)
    # every section the tiny demo supports (all but the ICP: too few deals) drew its planted labels
    drawn = [s.anchor for s in brief.sections if s.ok]
    assert drawn == [s.anchor for s in before if s.ok] and len(drawn) >= 5
    assert "script" not in parsed.tags and not [h for h in parsed.hrefs if "evil" in h]
    for payload in PAYLOADS:
        assert html.escape(payload, quote=False) in page or html.escape(payload) in page, payload
        assert payload in html.unescape("".join(parsed.text)), payload
    assert "<script>" not in page
