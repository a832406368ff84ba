"""The alignment brief: one self-contained HTML page for sales and strategy leaders.

Reads the `analytics.*` decision tables, draws each figure as inline SVG (`charts.py`) and writes
`$SALESALIGN_HOME/reports/alignment-brief.html` atomically. Every number carries its 95% interval
and the period it describes; a section whose table is missing or holds only status rows says so in
one line instead of drawing a chart. A coverage section lists every analysis of the registry with the
status of each of its tables: which ran, and why the others could not (unmet preconditions, failures).
Money is shown in the marts' own reporting currency (read from the marts, `currency.py`), with its
symbol. Nothing on the page is fetched from the network.
"""

from __future__ import annotations

import base64
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import duckdb
import jinja2
import pandas as pd

from salesalign.analytics import registry
from salesalign.analytics.icp import basis_of
from salesalign.analytics.preconditions import table_status
from salesalign.publish.charts import IntervalChart, Point, Row
from salesalign.publish.currency import marts_currency, symbol
from salesalign.publish.delivery import Delivery, read_delivery

TEMPLATES = Path(__file__).parent / "templates"
BRIEF_PATH = Path("reports") / "alignment-brief.html"
TABLES = tuple(registry.TABLES)  # the sections read some; the coverage section reads every one


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    status: str  # "ok" or why there is no chart
    words: str = ""  # plain-language reading, HTML
    figure: str = ""  # inline SVG
    table: str = ""  # HTML table

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --- numbers in words ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """Amounts in one currency, in words: `€1.25M`, `€12.3k`, `-€950`."""

    currency: str | None  # ISO 4217 code; None before the marts are built (amounts without a symbol)

    def __call__(self, v: float | None) -> str:
        if v is None or not math.isfinite(v):
            return "n/a"
        sign = "-" if v < 0 else ""
        unit = symbol(self.currency) if self.currency else ""
        a = abs(v)
        if a >= 1e6:
            return f"{sign}{unit}{a / 1e6:.2f}M"
        if a >= 1e4:
            return f"{sign}{unit}{a / 1e3:.1f}k"
        return f"{sign}{unit}{a:,.0f}"

    def axis(self, label: str) -> str:
        """The axis label of a chart of amounts: what they are, and in which currency."""
        return f"{label}, in {self.currency}" if self.currency else label


def pct(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{100 * v:.{digits}f}%"


def pct_points(v: float | None, spec: str) -> str:
    """A value already in percent, formatted with ``spec`` (e.g. `+.1f`): `+12.6%`, or 'n/a'."""
    f = _f(v)
    return "n/a" if f is None else f"{f:{spec}}%"


def pp(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{100 * v:+.1f} pp"


def with_interval(fmt, v, low, high) -> str:
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return fmt(v)
    return f"{fmt(v)} (95% CI {fmt(low)} to {fmt(high)})"


def _ci(fmt, row, value: str, low: str | None = None, high: str | None = None) -> str:
    """`row.value` with its interval, escaped for HTML. The interval columns default to
    `<value>_ci_low`/`<value>_ci_high` when the row has them, else `ci_low`/`ci_high`."""
    prefix = f"{value}_" if hasattr(row, f"{value}_ci_low") else ""
    low, high = low or f"{prefix}ci_low", high or f"{prefix}ci_high"
    return escape(with_interval(fmt, getattr(row, value), _f(getattr(row, low)), _f(getattr(row, high))))


def _e(v) -> str:
    """A table value as escaped text ('n/a' for a missing one)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return escape(str(v))


def _f(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _period(df: pd.DataFrame | None, start: str = "period_start", end: str = "period_end") -> str:
    if df is None or start not in df or df[start].dropna().empty:
        return "period unknown"
    return f"deals closed {pd.Timestamp(df[start].min()):%d %b %Y} to {pd.Timestamp(df[end].max()):%d %b %Y}"


def _label(name: str) -> str:
    return str(name).replace("_", " ")


def _html_table(df: pd.DataFrame, columns: dict[str, str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in columns.values())
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row[c]))}</td>" for c in columns) + "</tr>"
        for _, row in df.iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class BriefTables:
    """What the brief is drawn from: the analytics tables and the currency of the marts they come from."""

    frames: dict[str, pd.DataFrame | None]  # None: the table is not in the warehouse yet
    currency: str | None  # the marts' reporting currency; None before they are built
    cost_bases: tuple[str, ...] = ()  # the closed deals' cost bases (`full`, ...); () before the marts

    def get(self, name: str) -> pd.DataFrame | None:
        return self.frames.get(name)

    @property
    def money(self) -> Money:
        return Money(self.currency)


def _usable(tables: BriefTables, name: str) -> tuple[pd.DataFrame | None, str]:
    """The table's `ok` rows, or None and the reason to print instead of a chart."""
    df = tables.get(name)
    if df is None:
        return None, f"analytics.{name} is not in the warehouse yet (its asset has not run)."
    if df.empty:
        return None, f"analytics.{name} is empty."
    if "status" in df:
        ok = df[df.status == "ok"]
        if ok.empty:
            return None, f"analytics.{name}: {df.status.iloc[0]}"
        return ok, "ok"
    return df, "ok"


# --- sections ------------------------------------------------------------------------------------


def practice_effects_section(tables: BriefTables) -> Section:
    money = tables.money
    title = "Which sales practices cause wins and margin"
    df, status = _usable(tables, "practice_effects")
    if df is None:
        return Section("practices", title, status)
    head = df[(df.estimator == "aipw") & (df.estimand == "ATE")]
    if head.empty:
        return Section("practices", title, "no AIPW average effects in analytics.practice_effects")
    figures, bullets = [], []
    for outcome, axis, unit in (
        ("win", "effect on win probability (percentage points)", pp),
        ("contribution_margin", money.axis("effect on contribution margin per deal"), money),
    ):
        part = head[head.outcome == outcome]
        if part.empty:
            continue
        rows = [
            Row(
                _label(r.practice),
                [Point(r.estimate, _f(r.ci_low), _f(r.ci_high))],
                note=f"{unit(r.estimate)} [{unit(_f(r.ci_low))}, {unit(_f(r.ci_high))}]: {r.verdict}",
            )
            for r in part.sort_values("estimate", ascending=False).itertuples()
        ]
        tick = (lambda v: f"{100 * v:+.0f}") if outcome == "win" else (lambda v: money(v))
        figures.append(IntervalChart(rows, axis, fmt=tick).svg())
        for r in part.itertuples():
            if r.verdict in ("robust", "likely") or (_f(r.ci_low) or 0) > 0 or (_f(r.ci_high) or 0) < 0:
                bullets.append(
                    f"<li><b>{escape(_label(r.practice))}</b> changes {escape(_label(outcome))} by "
                    f"{_ci(unit, r, 'estimate')}: {_e(r.verdict)}."
                    "</li>"
                )
    period = _period(tables.get("roi_by_practice"))  # the engine's deals (practice_effects has no period)
    words = (
        f"<p>For each practice, the causal effect of using it on a deal ({escape(period)}), adjusted for "
        "the deal's segment, size, source and rep by doubly robust weighting (AIPW) - not the raw difference "
        "between deals with and without it, which is confounded. A line is the 95% interval: if it crosses "
        "zero we cannot tell whether the practice helps. Green: it helps; red: it hurts; grey: unclear.</p>"
        + (
            f"<ul>{''.join(bullets)}</ul>"
            if bullets
            else "<p>No practice has an effect clearly away from zero.</p>"
        )
    )
    return Section("practices", title, "ok", words, "".join(figures))


def _icp_labels(seg: pd.DataFrame, money: Money):
    """What the ICP's value columns hold (its `basis` column): the total, the rate it ranks on, the
    unit of effort and the format of its values; below contribution margin they are named so (net
    bookings, won deals), never margin, and a win rate is a percentage, not an amount."""
    basis = basis_of(seg.basis.iloc[0] if "basis" in seg and len(seg) else None)
    rate = "CM per selling hour" if basis.rate == "contribution margin per selling hour" else basis.rate
    return basis.total, rate, basis.effort, (money if basis.is_money else pct)


def icp_section(tables: BriefTables) -> Section:
    money = tables.money
    title = "Ideal customer profile: tiers and whether they held up"
    seg, status = _usable(tables, "icp_segments")
    if seg is None:
        return Section("icp", title, status)
    total, rate, effort, fmt = _icp_labels(seg, money)
    basis = str(seg.basis.iloc[0]) if "basis" in seg else rate
    count = fmt is not money  # the totals are won deals
    scored = seg.dropna(subset=["tier"]).sort_values("score_rank")
    tiers = (
        scored.groupby("tier")
        .agg(
            segments=("icp_segment", "count"),
            deals=("n_deals", "sum"),
            cm=("contribution_margin", "sum"),
            hours=("selling_hours", "sum"),
        )
        .reset_index()
    )
    tiers["rate"] = (tiers.cm / tiers.hours).map(fmt)
    tiers["total"] = tiers.cm.map((lambda v: f"{v:,.0f}") if count else money)
    top = scored.head(5).assign(
        cm_hour=lambda d: [
            with_interval(
                fmt, r.cm_per_selling_hour, r.cm_per_selling_hour_ci_low, r.cm_per_selling_hour_ci_high
            )
            for r in d.itertuples()
        ],
        win=lambda d: [
            with_interval(pct, r.win_rate, r.win_rate_ci_low, r.win_rate_ci_high) for r in d.itertuples()
        ],
    )
    table = (
        f"<h4>Tiers (A = best quartile of segments by {rate}), "
        f"{escape(_period(seg))}</h4><p>Ranked on {escape(basis)}. "
        "Totals over each tier's segments (sums, so no interval; the "
        "per-segment intervals are below and in analytics.icp_segments).</p>"
        + _html_table(
            tiers,
            {
                "tier": "tier",
                "segments": "segments",
                "deals": "deals",
                "total": total,
                "rate": rate,
            },
        )
        + "<h4>Top 5 segments</h4>"
        + _html_table(
            top,
            {
                "icp_segment": "segment",
                "tier": "tier",
                "n_deals": "deals",
                "cm_hour": rate,
                "win": "win rate",
            },
        )
    )
    figure, words = "", ""
    val, vstatus = _usable(tables, "icp_validation")
    if val is None:
        words = f"<p class='status'>Out-of-time validation: {escape(vstatus)}</p>"
    else:
        oot = val[(val.validation == "segment_tier_out_of_time") & (val.metric == "cm_per_selling_hour")]
        oot = oot[oot.group_name.str.startswith("tier ") & ~oot.group_name.str.contains("vs")]
        rows = [
            Row(
                r.group_name,
                [Point(r.estimate, _f(r.ci_low), _f(r.ci_high), tone="reference")],
                note=f"{with_interval(fmt, r.estimate, _f(r.ci_low), _f(r.ci_high))}, "
                f"{r.n_accounts} accounts",
            )
            for r in oot.sort_values("group_name").itertuples()
        ]
        if rows:
            label = f"later-window {rate}"
            figure = IntervalChart(rows, label if count else money.axis(label), fmt=fmt).svg()
        lift = val[
            (val.group_name == "tier A vs rest")
            & (val.metric == "lift_cm_per_selling_hour")
            & (val.validation == "segment_tier_out_of_time")
        ]
        r0 = oot.iloc[0] if len(oot) else None
        words = (
            "<p>Tiers were drawn on the earlier deals only "
            + (
                f"({pd.Timestamp(r0.train_period_start):%b %Y} to {pd.Timestamp(r0.train_period_end):%b %Y}) "
                "and judged on what those customers returned later "
                f"({pd.Timestamp(r0.test_period_start):%b %Y} to "
                f"{pd.Timestamp(r0.test_period_end):%b %Y}). "
                if r0 is not None
                else ""
            )
            + f"If the profile is real, tier A should still return the most per {effort} in the "
            "later window.</p>"
        )
        if len(lift):
            lr = lift.iloc[0]
            held = (_f(lr.ci_low) or 0) > 1
            words += (
                f"<p>Tier A returned {_ci(lambda v: f'{v:.2f}x', lr, 'estimate')}"
                f" the {escape(rate)} of the other tiers: "
                f"<b>{'the profile held up' if held else 'not clearly better than the rest'}</b>.</p>"
            )
    return Section("icp", title, "ok", words, figure, table)


def roi_section(tables: BriefTables) -> Section:
    money = tables.money
    title = "Return on sales effort, by segment and by practice"
    seg, status = _usable(tables, "roi_by_segment")
    prac, pstatus = _usable(tables, "roi_by_practice")
    if seg is None and prac is None:
        return Section("roi", title, f"{status} {pstatus}")
    figures, words = [], []
    if seg is not None:
        ranked = seg.sort_values("cm_per_selling_hour", ascending=False)
        shown = pd.concat([ranked.head(6), ranked.tail(4)]).drop_duplicates("segment_id")
        rows = [
            Row(
                r.segment_id.replace("|", " / "),
                [
                    Point(
                        r.cm_per_selling_hour,
                        _f(r.cm_per_selling_hour_ci_low),
                        _f(r.cm_per_selling_hour_ci_high),
                    )
                ],
                note=f"{money(r.cm_per_selling_hour)} per hour, {r.n_deals} deals",
            )
            for r in shown.itertuples()
        ]
        figures.append(
            IntervalChart(
                rows, money.axis("contribution margin per selling hour (after selling cost)"), fmt=money
            ).svg()
        )
        words.append(
            f"<p>Contribution margin per hour of selling ({escape(_period(seg))}), for the six best and "
            f"four worst of {len(seg)} segments. Margin is after the cost of winning and serving the deals; "
            "lost deals count "
            "their selling cost.</p>"
        )
    else:
        words.append(f"<p class='status'>{escape(status)}</p>")
    if prac is not None:
        overall = prac[(prac.level == "overall") & (prac.estimand == "ATE")]
        rows = [
            Row(
                _label(r.practice),
                [Point(r.net_incremental_cm_per_deal, _f(r.net_ci_low), _f(r.net_ci_high))],
                note=f"{money(r.net_incremental_cm_per_deal)} per deal for "
                f"{money(r.incremental_cost_per_deal)}: "
                f"{r.verdict}",
            )
            for r in overall.sort_values("net_incremental_cm_per_deal", ascending=False).itertuples()
        ]
        if rows:
            figures.append(
                IntervalChart(
                    rows, money.axis("net contribution margin gained per deal (after the practice's cost)"),
                    fmt=money,
                ).svg()
            )
        words.append(
            "<p>Each practice's causal gain in contribution per deal, net of what it costs to execute "
            "(its hours at "
            "the loaded rep cost, and any price it gives away), with its 95% interval. "
            "<b>worth executing</b>: the whole interval is above zero.</p>"
        )
    else:
        words.append(f"<p class='status'>{escape(pstatus)}</p>")
    return Section("roi", title, "ok", "".join(words), "".join(figures))


def reps_section(tables: BriefTables) -> Section:
    money = tables.money
    title = "Reps: how much is the rep, how much the mix they were given"
    reps, status = _usable(tables, "rep_performance")
    if reps is None:
        return Section("reps", title, status)
    # the rep's contribution margin per deal when the source has cost data, else the win rate
    cm = reps[reps.outcome == "contribution_margin"].dropna(subset=["adjusted_mean"])
    measure, fmt = "contribution margin per deal", money
    axis = money.axis("mix-adjusted contribution margin per deal")
    if not cm.empty:
        base = cm.adjusted_mean - cm.rep_effect  # company mean: the interval is on the effect
        cm = cm.assign(low=base + cm.ci_low, high=base + cm.ci_high)
    else:
        cm = reps[reps.outcome == "win"].dropna(subset=["adjusted_mean"])
        if cm.empty:
            return Section("reps", title, "no mix-adjusted contribution margin or win rate per rep")
        measure, fmt, axis = "win rate", pct, "mix-adjusted win rate (won deals per closed deal)"
        # the effect's interval is on the logit scale: moved to the rate through the logit of the
        # adjusted win rate (a close approximation of averaging over the company's deals)
        logit = cm.adjusted_mean.map(lambda v: math.log(v / (1 - v)) if 0 < v < 1 else float("nan"))
        cm = cm.assign(
            low=(logit + cm.ci_low - cm.rep_effect).map(_expit),
            high=(logit + cm.ci_high - cm.rep_effect).map(_expit),
        )
        base = pd.Series(float(cm.adjusted_mean.mean()), index=cm.index)
    cm = cm.sort_values("adjusted_mean")
    rows = [
        Row(
            r.rep_id,
            [Point(r.adjusted_mean, _f(r.low), _f(r.high), tone=_rep_tone(r, base.mean()))],
            note=f"{fmt(r.adjusted_mean)} ({r.n_deals} deals)" if i in (0, len(cm) - 1) else "",
        )
        for i, r in enumerate(cm.itertuples())
    ]
    figure = IntervalChart(
        rows,
        axis,
        fmt=fmt,
        row_height=11,
        label_width=90,
        zero_line=False,
    ).svg()
    words = (
        f"<p>Each rep's {measure} if every rep had been handed the same mix of deals "
        f"({escape(_period(cm))}): the model removes segment, product, lead source, deal size and tenure, "
        "and shrinks small samples towards the average. Green reps are reliably above the average rep, "
        "red reliably "
        "below; most intervals overlap, so rankings in the middle mean little.</p>"
    )
    summary, sstatus = _usable(tables, "rep_variance_summary")
    if summary is not None:
        items = []
        for r in summary.itertuples():
            ratio = (
                "; top-quartile reps out-earn bottom-quartile "
                f"{r.raw_top_bottom_quartile_ratio:.1f}x raw but "
                f"{r.adjusted_top_bottom_quartile_ratio:.1f}x once the mix is removed"
                if _f(r.raw_top_bottom_quartile_ratio) and _f(r.adjusted_top_bottom_quartile_ratio)
                else ""
            )
            items.append(
                f"<li>{escape(_label(r.outcome))}: {_ci(pct, r, 'icc')}"
                f" of the variation between deals is the rep ({r.n_reps} reps, {r.n_deals:,} deals)"
                f"{escape(ratio)}.</li>"
            )
        words += f"<ul>{''.join(items)}</ul>"
    else:
        words += f"<p class='status'>{escape(sstatus)}</p>"
    return Section("reps", title, "ok", words, figure)


def _expit(v: float) -> float:
    return 1 / (1 + math.exp(-v)) if math.isfinite(v) else float("nan")


def _rep_tone(r, mean: float) -> str:
    if _f(r.low) is not None and r.low > mean:
        return "positive"
    if _f(r.high) is not None and r.high < mean:
        return "negative"
    return "uncertain"


def alignment_section(tables: BriefTables) -> Section:
    money = tables.money
    title = "Strategy alignment: intended vs actual effort, promised vs realised"
    df, status = _usable(tables, "strategy_alignment")
    if df is None:
        return Section("alignment", title, status)
    targets = df[df.allocation.notna()]  # the company-goals row has no allocation of its own
    effort = IntervalChart(
        [
            Row(
                _label(r.target),
                [
                    Point(r.intended_effort_share, series="intended", tone="reference"),
                    Point(
                        r.actual_effort_share,
                        _f(r.actual_effort_share_ci_low),
                        _f(r.actual_effort_share_ci_high),
                        series="actual",
                        tone="negative" if r.allocation != "aligned" else "positive",
                    ),
                ],
                note=f"{pct(r.intended_effort_share, 0)} intended, {pct(r.actual_effort_share, 0)} actual: "
                f"{r.allocation}",
            )
            for r in targets.itertuples()
        ],
        "share of all selling hours",
        fmt=lambda v: f"{100 * v:.0f}%",
        zero_line=False,
        note_width=400,
        legend=[("intended", "reference", "square"), ("actual (95% CI)", "uncertain", "interval")],
    ).svg()
    grew = df[df.realised_cm_growth_pct.notna() & df.promised_cm_growth_pct.notna()]
    growth = IntervalChart(
        [
            Row(
                _label(r.target),
                [
                    Point(r.promised_cm_growth_pct / 100, series="promised", tone="reference"),
                    Point(
                        r.realised_cm_growth_pct / 100,
                        series="realised",
                        tone="positive"
                        if r.realised_cm_growth_pct >= r.promised_cm_growth_pct
                        else "negative",
                    ),
                ],
                note=f"promised {r.promised_cm_growth_pct:+.0f}%, realised {r.realised_cm_growth_pct:+.1f}% "
                f"({pct_points(r.realisation_pct, '.0f')} of the promise)",
            )
            for r in grew.itertuples()  # a target without deals in both periods has no growth to draw
        ],
        "growth in contribution margin, recent period vs the one before",
        fmt=lambda v: f"{100 * v:+.0f}%",
        note_width=400,
        legend=[("promised", "reference", "square"), ("realised", "uncertain", "point")],
    ).svg() if len(grew) else ""
    r0 = df.iloc[0]
    words = (
        "<p>Where the strategy says effort should go (strategy.yml) against where selling hours actually "
        f"went ({escape(_period(df))}), and the contribution growth each target promised against what it "
        f"delivered (recent period from {pd.Timestamp(r0.recent_period_start):%d %b %Y} vs the same length "
        "before).</p><ul>"
        + "".join(
            f"<li><b>{escape(_label(r.target))}</b>: {_e(r.allocation)}, "
            f"{_ci(pct, r, 'actual_effort_share')}"
            f" of hours for an intended {pct(r.intended_effort_share, 0)}; returns "
            f"{_ci(money, r, 'cm_per_selling_hour')}"
            f" per selling hour; delivered {pct_points(r.realisation_pct, '.0f')} of its promised "
            "contribution.</li>"
            for r in targets.itertuples()
        )
        + "".join(
            f"<li><b>{_e(r.target)}</b>: contribution grew {pct_points(r.realised_cm_growth_pct, '+.1f')} "
            "against a "
            "promised "
            f"{pct_points(r.promised_cm_growth_pct, '+.0f')}: {pct_points(r.realisation_pct, '.0f')} of the "
            "promise delivered.</li>"
            for r in df[df.allocation.isna()].itertuples()
        )
        + "</ul>"
    )
    prac, _ = _usable(tables, "practice_alignment")
    table = ""
    if prac is not None:
        flagged = prac[prac.alignment.isin(["not worth it", "unused opportunity", "prescribed, unproven"])]
        if len(flagged):
            flagged = flagged.assign(
                practice=flagged.practice.map(_label),
                usage=flagged.usage_rate.map(lambda v: pct(v, 0)),
                effect=[
                    with_interval(money, r.net_incremental_cm_per_deal, _f(r.net_ci_low), _f(r.net_ci_high))
                    for r in flagged.itertuples()
                ],
            )
            table = (
                "<h4>Prescribed practices that do not pay, and unprescribed ones that do</h4>"
                + _html_table(
                    flagged,
                    {
                        "target": "target",
                        "practice": "practice",
                        "prescribed": "prescribed",
                        "usage": "used on",
                        "effect": "net CM per deal",
                        "alignment": "reading",
                    },
                )
            )
    return Section("alignment", title, "ok", words, effort + growth, table)


def reallocation_section(tables: BriefTables) -> Section:
    money = tables.money
    title = "Top effort reallocations"
    df, status = _usable(tables, "effort_reallocation")
    if df is None:
        return Section("reallocation", title, status)
    df = df.sort_values("rank").head(5)
    rows = [
        Row(
            f"{_label(r.from_target)} -> {_label(r.to_target)}",
            [Point(r.expected_cm_gain_per_year, _f(r.gain_ci_low), _f(r.gain_ci_high))],
            note=f"{r.hours_per_year:,.0f} h/yr: {money(r.expected_cm_gain_per_year)} a year",
        )
        for r in df.itertuples()
    ]
    figure = IntervalChart(rows, money.axis("expected contribution margin gained per year"), fmt=money).svg()
    assumption = str(df.iloc[0].assumption)
    words = (
        "<p>Moving selling hours from over-invested to under-invested targets, largest return difference "
        "first "
        f"(returns measured on {escape(_period(df))}). {_e(assumption[:1].upper() + assumption[1:])}.</p><ul>"
        + "".join(
            f"<li>Move <b>{r.hours_per_year:,.0f} hours a year</b> from {escape(_label(r.from_target))} "
            f"({money(r.from_cm_per_selling_hour)}/h) to {escape(_label(r.to_target))} "
            f"({money(r.to_cm_per_selling_hour)}/h): "
            f"{_ci(money, r, 'expected_cm_gain_per_year', 'gain_ci_low', 'gain_ci_high')} a year.</li>"
            for r in df.itertuples()
        )
        + "</ul>"
    )
    return Section("reallocation", title, "ok", words, figure)


FUNNEL_HORIZONS = (30, 90, 180, 365)  # days since creation shown in the funnel's time-to-convert table


def _rate(row: pd.Series, value: str, low: str | None = None, high: str | None = None) -> str:
    """A rate of deals with its interval (`<value>_ci_low/high` unless named), as plain text."""
    low, high = low or f"{value}_ci_low", high or f"{value}_ci_high"
    return with_interval(pct, _f(row[value]), _f(row[low]), _f(row[high]))


def funnel_section(tables: BriefTables) -> Section:
    """Conversion of the opportunities in deals (never money): overall and by lead source with their
    intervals, and how many are won or lost by a few days since creation; open ones censored."""
    title = "Funnel: how many opportunities are won, and how fast (counts of deals, not money)"
    conv, status = _usable(tables, "funnel_conversion")
    if conv is None:
        return Section("funnel", title, status)
    rate, horizon = registry.FUNNEL_CONVERSION_NAME, registry.FUNNEL_HORIZON_DAYS
    every = tables.get("funnel_conversion")
    overall = every[every.dimension == "all"].iloc[0]
    if overall.status == "ok":
        words = (
            f"<p><b>{escape(_rate(overall, rate))}</b> of opportunities are won within {horizon} days of "
            f"their creation ({overall.opportunities:,} opportunities created "
            f"{pd.Timestamp(overall.created_from):%d %b %Y} to {pd.Timestamp(overall.created_to):%d %b %Y}: "
            f"{overall.won:,} won, {overall.lost:,} lost, {overall.open:,} still open on "
            f"{pd.Timestamp(overall.censored_at):%d %b %Y}). An open opportunity counts for as long as it "
            "has been open, neither won nor lost (censored), so recent leads are not read as lost. Of the "
            f"opportunities that closed, {escape(_rate(overall, 'win_rate_closed'))} were won: that rate "
            "leaves the open ones out.</p>"
        )
    else:
        words = f"<p class='status'>All opportunities: {escape(str(overall.status))}</p>"
    sources = every[every.dimension == "lead_source"].sort_values("value")
    shown = sources[sources.status == "ok"].sort_values(rate, ascending=False)
    figure = ""
    if len(shown):
        figure = IntervalChart(
            [
                Row(
                    str(r["value"]),
                    [Point(r[rate], _f(r[f"{rate}_ci_low"]), _f(r[f"{rate}_ci_high"]), tone="reference")],
                    note=f"{pct(r[rate])} of {r['opportunities']:,} opportunities",
                )
                for _, r in shown.iterrows()
            ],
            f"share of opportunities won within {horizon} days (a rate of deals, not money)",
            fmt=lambda v: f"{100 * v:.0f}%",
            zero_line=False,
        ).svg()
    rows = [r for _, r in sources.iterrows()]
    by_source = sources.assign(
        conversion=[_rate(r, rate) if r["status"] == "ok" else "n/a" for r in rows],
        closed_rate=[_rate(r, "win_rate_closed") if r["status"] == "ok" else "n/a" for r in rows],
    )
    table = "<h4>By lead source (counts of deals)</h4>" + _html_table(
        by_source,
        {
            "value": "lead source",
            "opportunities": "opportunities",
            "open": "open",
            "won": "won",
            "lost": "lost",
            "conversion": f"won within {horizon} days",
            "closed_rate": "won of closed",
            "status": "status",
        },
    )
    curve = tables.get("funnel_time_to_convert")
    if curve is not None and "dimension" in curve:
        at = curve[(curve.dimension == "all") & curve.days.isin(FUNNEL_HORIZONS)]
        at = at.set_index(["outcome", "days"])

        def by(outcome: str, d: int) -> str:
            r = at.loc[(outcome, d)]
            if r["status"] != "ok":
                return r["status"]
            return _rate(r, "cumulative_incidence", "ci_low", "ci_high")

        grid = pd.DataFrame(
            [
                {"days": f"{d} days", "won": by("won", d), "lost": by("lost", d),
                 "at_risk": f"{int(at.loc[('won', d)]['at_risk']):,}"}
                for d in FUNNEL_HORIZONS
                if ("won", d) in at.index and ("lost", d) in at.index
            ]
        )
        if len(grid):
            table += (
                "<h4>Time to convert: share of all opportunities won and lost by days since creation</h4>"
                + _html_table(
                    grid,
                    {
                        "days": "since creation",
                        "won": "won by then",
                        "lost": "lost by then",
                        "at_risk": "open at that age (at risk)",
                    },
                )
            )
    return Section("funnel", title, "ok", words, figure, table)


SECTIONS = (
    practice_effects_section,
    icp_section,
    roi_section,
    reps_section,
    alignment_section,
    reallocation_section,
    funnel_section,
)


# --- coverage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """One analytics table in the coverage section: its analysis and its status."""

    analysis: str  # the analysis' title
    table: str
    status: str  # "ok", or why the table holds no numbers

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def coverage(tables: BriefTables) -> list[Coverage]:
    """Every table of the registry, in registry order, with the status of its rows."""
    rows = []
    for a in registry.ANALYSES:
        for t in a.tables:
            frame = tables.get(t.name)
            status = (
                "not in the warehouse yet (its asset has not run)" if frame is None else table_status(frame)
            )
            rows.append(Coverage(a.title, t.name, status))
    return rows


# --- the page ------------------------------------------------------------------------------------


def read_tables(con: duckdb.DuckDBPyConnection) -> BriefTables:
    """The analytics tables the brief reads (None for a table that does not exist yet) and the
    reporting currency of the marts."""
    present = {
        t
        for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'analytics' "
            "AND database_name = current_database()"
        ).fetchall()
    }
    frames = {t: con.execute(f"SELECT * FROM analytics.{t}").df() if t in present else None for t in TABLES}
    currency = marts_currency(con)  # None: no closed deal in the marts (or no marts)
    bases = () if currency is None else tuple(
        b for (b,) in con.execute(
            "SELECT DISTINCT cost_basis FROM marts.fct_deal_margin WHERE cost_basis IS NOT NULL ORDER BY 1"
        ).fetchall()
    )
    return BriefTables(frames, currency, bases)


def build_sections(tables: BriefTables) -> list[Section]:
    """Every section; one that cannot be drawn says why instead of failing the brief."""
    sections = []
    for build in SECTIONS:
        try:
            sections.append(build(tables))
        except Exception as exc:  # a table with unexpected content must not cost leaders the brief
            name = build.__name__.removesuffix("_section")
            sections.append(
                Section(name, name.replace("_", " "), f"could not be drawn ({type(exc).__name__}: {exc})")
            )
    return sections


def render(
    sections: list[Section],
    currency: str | None,
    run_id: str = "",
    generated_at: datetime | None = None,
    covered: list[Coverage] | None = None,
    cost_bases: tuple[str, ...] = (),
    delivery: Delivery | None = None,
) -> str:
    """The brief as one HTML document (styles and charts inline); `currency` is the marts' (None
    before they are built); `covered` fills the coverage section (none without it); `cost_bases` are
    the deals' (amounts are contribution margin only when every deal has the full cost basis; none
    known, the brief claims neither); `delivery` is what the source delivered (shown with the coverage)."""
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False, undefined=jinja2.StrictUndefined
    ).get_template("alignment-brief.html.j2")
    return template.render(
        sections=sections,
        currency=currency,
        symbol=symbol(currency).strip() if currency else "",
        run_id=run_id,
        generated_at=(generated_at or datetime.now(UTC)).strftime("%d %b %Y %H:%M UTC"),
        coverage=covered or [],
        coverage_ran=sum(c.ok for c in covered or []),
        full_costs=set(cost_bases) == {"full"},
        cost_bases=", ".join(cost_bases),
        delivery=delivery,
    )


def section_markdown(section: Section) -> str:
    """The section's charts as Markdown images (SVG data URIs: Dagster's metadata viewer shows them)."""
    svgs = re.findall(r"<svg.*?</svg>", section.figure, flags=re.S)
    uris = [f"data:image/svg+xml;base64,{base64.b64encode(s.encode()).decode()}" for s in svgs]
    images = [f"![{section.title}]({uri})" for uri in uris]
    return f"**{section.title}**\n\n" + ("\n\n".join(images) if images else f"_{section.status}_")


@dataclass(frozen=True)
class Brief:
    path: Path
    sections: list[Section]
    coverage: list[Coverage]


def write_brief(con: duckdb.DuckDBPyConnection, home: Path, run_id: str) -> Brief:
    """Render the brief from the warehouse and replace `$home/reports/alignment-brief.html` atomically."""
    tables = read_tables(con)
    sections = build_sections(tables)
    covered = coverage(tables)
    html = render(
        sections,
        tables.currency,
        run_id,
        covered=covered,
        cost_bases=tables.cost_bases,
        delivery=read_delivery(con),
    )
    target = home / BRIEF_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{run_id}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no partial file behind
    return Brief(target, sections, covered)
