"""Write the demo company's file drop (one file per contract table) and truth.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from salesalign.contract import STAGES, TABLE_NAMES

from . import model as M
from .arrow_types import arrow_schema
from .presets import preset
from .truth import accumulate_effort, compute_truth, deal_outcomes, realised_win, rep_id_list

FIRST_NAMES = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Lena",
    "Jonas",
    "Sofia",
    "Lucas",
    "Emma",
    "Noah",
    "Mia",
    "Liam",
    "Hannah",
    "Ethan",
    "Chloe",
    "Oliver",
    "Aiko",
    "Hiro",
    "Priya",
    "Arjun",
    "Mei",
    "Wei",
    "Olivia",
    "Mateo",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Muller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Dubois",
    "Martin",
    "Bernard",
    "Rossi",
    "Russo",
    "Jansen",
    "de Vries",
    "Nguyen",
    "Tanaka",
    "Suzuki",
    "Kim",
    "Lee",
    "Chen",
    "Wang",
    "Singh",
    "Patel",
    "Taylor",
    "Wilson",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
    "King",
    "Wright",
)
NAME_A = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Aperture",
    "Massive",
    "Gringotts",
    "Oceanic",
    "Pied",
    "Nakatomi",
    "Virtucon",
    "Monarch",
    "Blue Sun",
    "Dunder",
    "Sterling",
    "Prestige",
    "Bluth",
    "Krusty",
    "Gekko",
    "Delos",
    "Zenith",
    "Apex",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Tailspin",
    "Litware",
    "Adatum",
    "Proseware",
    "Woodgrove",
    "Lamna",
    "Fourth Coffee",
)
NAME_B = (
    "Systems",
    "Industries",
    "Labs",
    "Holdings",
    "Group",
    "Technologies",
    "Solutions",
    "Partners",
    "Dynamics",
    "Networks",
    "Logistics",
    "Health",
    "Capital",
    "Retail",
    "Manufacturing",
    "Analytics",
)
LEGAL = ("Inc", "LLC", "GmbH", "SA", "BV", "Pty Ltd", "Ltd", "AG")
TITLES = (
    "VP Sales",
    "CFO",
    "CTO",
    "Head of Operations",
    "IT Director",
    "Procurement Manager",
    "Director of Finance",
    "COO",
    "Data Lead",
    "Head of Customer Success",
)


# ------------------------------------------------------------------ arrow helpers
def ids(prefix: str, ints: np.ndarray, width: int) -> pa.Array:
    s = pc.utf8_lpad(pc.cast(pa.array(np.asarray(ints, np.int64)), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, s, "")


def money(cents: np.ndarray) -> pa.Array:
    return pc.round(pa.array(np.asarray(cents, np.float64) / 100.0), 2).cast(pa.decimal128(18, 2))


def ts(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, np.int64), pa.timestamp("us"))


def date(day: np.ndarray) -> pa.Array:
    """Window day offsets (0 = 2023-01-01) to date32."""
    return pa.array((np.asarray(day, np.int64) + M.EPOCH_D0).astype(np.int32), pa.date32())


def take(vocab, codes: np.ndarray) -> pa.Array:
    return pa.array(list(vocab), pa.string()).take(pa.array(np.asarray(codes, np.int64)))


def sec_to_us(s_rel: np.ndarray) -> np.ndarray:
    return (M.EPOCH_D0 * 86400 + np.asarray(s_rel, np.int64)) * 1_000_000


class Sink:
    """Chunked writer of one contract table (Parquet or CSV)."""

    def __init__(self, out_dir: Path, name: str, fmt: str):
        self.name, self.schema, self.rows = name, arrow_schema(name), 0
        path = out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        else:
            self.writer = pacsv.CSVWriter(path, self.schema)

    def write(self, cols: dict) -> None:
        arrays = []
        for f in self.schema:
            arr = cols[f.name]
            arr = arr if isinstance(arr, pa.Array) else pa.array(arr)
            if arr.type != f.type:
                arr = arr.cast(f.type)
            arrays.append(arr)
        t = pa.Table.from_arrays(arrays, schema=self.schema)
        if t.num_rows:
            self.writer.write_table(t)
        self.rows += t.num_rows

    def close(self) -> None:
        self.writer.close()


# ------------------------------------------------------------------ public API
def generate(scale: str, seed: int, out_dir: Path, fmt: str = "parquet") -> dict:
    """Write the demo drop for (scale, seed) into out_dir; return a summary."""
    if fmt not in ("parquet", "csv"):
        raise ValueError("fmt must be 'parquet' or 'csv'")
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w = M.build_world(preset(scale), seed, "observational")
    a = w.arrays
    n = w.preset.n_opportunities
    sinks = {t: Sink(out_dir, t, fmt) for t in TABLE_NAMES}
    rep_ids = pa.array(rep_id_list(w))
    acc_ids = ids("ACC-", np.arange(w.preset.n_accounts), 7)
    _write_dimensions(w, sinks, rep_ids, acc_ids)

    _, won = realised_win(w)
    routine_effort = np.zeros(n)
    routine_minutes = np.zeros(n)
    last_stage = np.zeros(n, np.int64)
    last_change = np.zeros(n, np.int64)
    n_act = n_hist = 0
    n_chunks = -(-n // w.preset.chunk_deals)
    amount_all, disc_all = M.amount_cents(a, a["deal_treat"][:, M.DISCOUNT_PRACTICE], np.arange(n))
    pre_amount = np.round(a["deal_list_cents"] * (1 - np.round(a["deal_routine_disc"], 4))).astype(np.int64)
    for c in range(n_chunks):
        ch = M.activity_chunk(w, c)
        accumulate_effort(w, ch, routine_effort, routine_minutes)
        d = ch["deal"]
        sinks["activities"].write(
            {
                "activity_id": ids("ACT-", np.arange(n_act, n_act + d.size), 10),
                "opportunity_id": ids("OPP-", d, 8),
                "account_id": acc_ids.take(pa.array(a["deal_acc"][d])),
                "rep_id": rep_ids.take(pa.array(a["deal_owner"][d])),
                "activity_type": take(M.ACTIVITY_TYPE_NAMES, ch["type"]),
                "started_at": ts(ch["start_us"]),
                "duration_minutes": pa.array(ch["minutes"].astype(np.int32)),
            }
        )
        n_act += d.size
        st = M.stage_chunk(w, c, won)
        d = st["deal"]
        last = np.r_[d[1:] != d[:-1], True]
        last_stage[d[last]] = st["stage"][last]
        last_change[d[last]] = st["time_us"][last]
        hist_amt = np.where(st["stage"] >= 3, amount_all[d], pre_amount[d])
        sinks["opportunity_stage_history"].write(
            {
                "history_id": ids("OSH-", np.arange(n_hist, n_hist + d.size), 9),
                "opportunity_id": ids("OPP-", d, 8),
                "stage": take(STAGES, st["stage"]),
                "changed_at": ts(st["time_us"]),
                "amount": money(hist_amt),
            }
        )
        n_hist += d.size

    region = a["deal_region"]
    sinks["opportunities"].write(
        {
            "opportunity_id": ids("OPP-", np.arange(n), 8),
            "account_id": acc_ids.take(pa.array(a["deal_acc"])),
            "owner_rep_id": rep_ids.take(pa.array(a["deal_owner"])),
            "product_id": take([p[0] for p in M.PRODUCTS], a["deal_product"]),
            "lead_source": take(M.LEAD_SOURCES, a["deal_lead"]),
            "currency": take(M.CURRENCIES, region),
            "quantity": pa.array(a["deal_qty"].astype(np.int32)),
            "list_amount": money(a["deal_list_cents"]),
            "amount": money(amount_all),
            "discount": pa.array(disc_all),
            "stage": take(STAGES, last_stage),
            "is_closed": pa.array(a["deal_closed"]),
            "is_won": pa.array(won),
            "created_at": ts(sec_to_us(a["deal_created_s"])),
            "close_date": date(a["deal_close"]),
            "updated_at": ts(last_change),
        }
    )

    fin = _write_finance(w, sinks, won, amount_all, rep_ids, acc_ids)
    for s in sinks.values():
        s.close()
    rows = {t: s.rows for t, s in sinks.items()}

    out = deal_outcomes(w, routine_effort, routine_minutes)
    closed = a["deal_closed"]
    bookkeeping = {
        "n_opportunities": int(n),
        "n_closed": int(closed.sum()),
        "n_won": int(won.sum()),
        "n_lost": int((closed & ~won).sum()),
        "n_open": int((~closed).sum()),
        "invoiced_usd": round(fin["invoiced_usd"], 2),
        "credits_usd": round(fin["credits_usd"], 2),
        "net_revenue_usd": round(fin["invoiced_usd"] - fin["credits_usd"], 2),
        "bookings_usd": round(fin["bookings_usd"], 2),
        "commissions_usd": round(fin["commissions_usd"], 2),
        "cost_to_serve_usd": round(fin["cost_to_serve_usd"], 2),
        "selling_hours_closed": round(float(out["selling_hours"].sum()), 4),
        "effort_cost_closed_usd": round(float(out["effort"].sum()), 2),
        "contribution_margin_realised_usd": round(float(out["cm_realised"].sum()), 2),
        "rows": rows,
    }
    truth = compute_truth(w, out, bookkeeping)
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=2, allow_nan=False) + "\n")
    return {"scale": scale, "seed": seed, "tables": rows, "seconds": round(time.perf_counter() - t0, 3)}


def simulate_deal_outcomes(scale: str, seed: int, assignment: str = "observational") -> pd.DataFrame:
    """One row per closed deal with practices, segment and realised (and expected) outcomes in USD."""
    w = M.build_world(preset(scale), seed, assignment)
    a = w.arrays
    n = w.preset.n_opportunities
    routine_effort = np.zeros(n)
    routine_minutes = np.zeros(n)
    for c in range(-(-n // w.preset.chunk_deals)):
        accumulate_effort(w, M.activity_chunk(w, c), routine_effort, routine_minutes)
    out = deal_outcomes(w, routine_effort, routine_minutes)
    idx = out["idx"]
    segs = np.array(M.segment_ids())
    rep_ids = np.array(rep_id_list(w))
    df = pd.DataFrame(
        {
            "opportunity_id": [f"OPP-{i:08d}" for i in idx],
            "account_id": [f"ACC-{i:07d}" for i in a["deal_acc"][idx]],
            "rep_id": rep_ids[a["deal_owner"][idx]],
            "segment": segs[a["deal_seg"][idx]],
            "industry": np.array(M.INDUSTRIES)[a["deal_ind"][idx]],
            "size_band": np.array(M.SIZE_BANDS)[a["deal_band"][idx]],
            "region": np.array(M.REGIONS)[a["deal_region"][idx]],
            "lead_source": np.array(M.LEAD_SOURCES)[a["deal_lead"][idx]],
        }
    )
    for k, p in enumerate(M.PRACTICES):
        df[p] = out["treat"][:, k]
    df["won"] = out["won"]
    df["p_win"] = out["p_win"]
    df["contribution_margin"] = out["cm_realised"]
    df["expected_contribution_margin"] = out["cm_expected"]
    df["selling_hours"] = out["selling_hours"]
    df["effort_cost"] = out["effort"]
    df["amount_usd"] = out["amount_cents"] / 100.0 * a["fx"][a["deal_region"][idx], a["deal_close"][idx]]
    return df


# ------------------------------------------------------------------ tables
def _write_dimensions(w: M.World, sinks: dict, rep_ids: pa.Array, acc_ids: pa.Array) -> None:
    a = w.arrays
    # fx_rates: every calendar day of the window plus a year, every currency (USD = 1.0)
    nd, nc = M.N_HORIZON_DAYS, len(M.CURRENCIES)
    sinks["fx_rates"].write(
        {
            "rate_date": date(np.tile(np.arange(nd), nc)),
            "currency": take(M.CURRENCIES, np.repeat(np.arange(nc), nd)),
            "usd_per_unit": pa.array(a["fx"].reshape(-1)),
        }
    )
    # reps
    first, last = a["rep_first"] % len(FIRST_NAMES), a["rep_last"] % len(LAST_NAMES)
    mgr = a["rep_manager"]
    manager_id = rep_ids.take(pa.array(np.where(mgr < 0, 0, mgr), mask=mgr < 0))
    team = [f"{M.REGIONS[r]}-{t + 1}" for r, t in zip(a["rep_region"], a["rep_team"], strict=True)]
    active = a["rep_leave"] > M.LAST_WINDOW_DAY
    upd_day = np.where(active, np.maximum(a["rep_hire"], 0), np.minimum(a["rep_leave"], M.LAST_WINDOW_DAY))
    sinks["reps"].write(
        {
            "rep_id": rep_ids,
            "rep_name": pc.binary_join_element_wise(take(FIRST_NAMES, first), take(LAST_NAMES, last), " "),
            "team": pa.array(team),
            "manager_id": manager_id,
            "region": take(M.REGIONS, a["rep_region"]),
            "hire_date": date(a["rep_hire"]),
            "prior_industry_experience": pa.array(a["rep_prior"]),
            "previous_role": take(M.ROLES, a["rep_role"]),
            "years_experience": pa.array(a["rep_years"].astype(np.int32)),
            "quota": money(a["rep_quota"] * 100),
            "is_active": pa.array(active),
            "updated_at": ts((upd_day + M.EPOCH_D0) * M.DAY_US + 9 * 3_600_000_000),
        }
    )
    # rep_costs: every month of the window the rep was employed
    months = np.arange(M.N_WINDOW_MONTHS)
    ms = M.MONTH_START_DAY[months]
    me = M.MONTH_START_DAY[months + 1]
    emp = (a["rep_hire"][:, None] < me[None, :]) & (a["rep_leave"][:, None] >= ms[None, :])
    ri, mi = np.nonzero(emp)
    sinks["rep_costs"].write(
        {
            "rep_id": rep_ids.take(pa.array(ri)),
            "month": date(M.MONTH_START_DAY[mi]),
            "loaded_cost_per_hour": money(a["rep_rate_cents"][ri, mi]),
            "currency": pa.array(["USD"] * ri.size, pa.string()),
        }
    )
    # products and product_costs
    prod_upd = ts(np.full(len(M.PRODUCTS), (M.EPOCH_D0 - 30) * M.DAY_US))
    sinks["products"].write(
        {
            "product_id": pa.array([p[0] for p in M.PRODUCTS]),
            "product_name": pa.array([p[1] for p in M.PRODUCTS]),
            "product_family": pa.array([p[2] for p in M.PRODUCTS]),
            "list_price": money(np.array([p[3] for p in M.PRODUCTS]) * 100),
            "updated_at": prod_upd,
        }
    )
    pi, yi = np.divmod(np.arange(len(M.PRODUCTS) * 4), 4)
    y_from = np.array([(np.datetime64(f"{2023 + y}-01-01") - M.D0).astype(int) for y in range(5)])
    valid_to = pa.array((y_from[yi + 1] - 1 + M.EPOCH_D0).astype(np.int32), pa.date32(), mask=yi == 3)
    sinks["product_costs"].write(
        {
            "product_id": take([p[0] for p in M.PRODUCTS], pi),
            "valid_from": date(y_from[yi]),
            "valid_to": valid_to,
            "cogs_rate": pa.array(a["cogs"][pi, yi]),
        }
    )
    # accounts
    na = w.preset.n_accounts
    name = pc.binary_join_element_wise(
        take(NAME_A, a["acc_name1"] % len(NAME_A)),
        take(NAME_B, a["acc_name2"] % len(NAME_B)),
        take(LEGAL, (a["acc_name1"] + a["acc_name2"]) % len(LEGAL)),
        " ",
    )
    country_codes = [c for cs in M.COUNTRIES for c in cs]
    offsets = np.cumsum([0] + [len(cs) for cs in M.COUNTRIES])[:-1]
    sinks["accounts"].write(
        {
            "account_id": acc_ids,
            "account_name": name,
            "industry": take(M.INDUSTRIES, a["acc_industry"]),
            "employee_count": pa.array(a["acc_emp"].astype(np.int32)),
            "annual_revenue": money(a["acc_revenue_cents"]),
            "currency": take(M.CURRENCIES, a["acc_region"]),
            "region": take(M.REGIONS, a["acc_region"]),
            "country": take(country_codes, offsets[a["acc_region"]] + a["acc_country"]),
            "created_at": ts(sec_to_us(a["acc_created_s"])),
            "updated_at": ts(sec_to_us(a["acc_updated_s"])),
        }
    )
    # contacts: 1-4 per account
    r = w.rng["contacts"]
    cnt = r.integers(1, 5, na)
    ca = np.repeat(np.arange(na), cnt)
    nct = ca.size
    fn, ln = (
        take(FIRST_NAMES, r.integers(0, len(FIRST_NAMES), nct)),
        take(LAST_NAMES, r.integers(0, len(LAST_NAMES), nct)),
    )
    local = pc.binary_join_element_wise(
        pc.utf8_lower(fn), pc.utf8_lower(pc.replace_substring(ln, " ", "")), "."
    )
    domain = pc.binary_join_element_wise(pc.utf8_lower(acc_ids.take(pa.array(ca))), "example.com", ".")
    country_prefix = np.array(["+1", "+49", "+61"])[a["acc_region"][ca]]
    phone = pc.binary_join_element_wise(
        pa.array(country_prefix),
        "555",
        pc.utf8_lpad(pc.cast(pa.array(r.integers(0, 10_000_000, nct)), pa.string()), 7, "0"),
        " ",
    )
    c_created = a["acc_created_s"][ca] + r.integers(0, 400 * 86400, nct)
    c_updated = c_created + (r.random(nct) * np.maximum(M.LAST_WINDOW_DAY * 86400 - c_created, 0)).astype(
        np.int64
    )
    sinks["contacts"].write(
        {
            "contact_id": ids("CON-", np.arange(nct), 8),
            "account_id": acc_ids.take(pa.array(ca)),
            "first_name": fn,
            "last_name": ln,
            "email": pc.binary_join_element_wise(local, domain, "@"),
            "phone": phone,
            "title": take(TITLES, r.integers(0, len(TITLES), nct)),
            "created_at": ts(sec_to_us(c_created)),
            "updated_at": ts(sec_to_us(c_updated)),
        }
    )


def _write_finance(
    w: M.World, sinks: dict, won: np.ndarray, amount_all: np.ndarray, rep_ids: pa.Array, acc_ids: pa.Array
) -> dict:
    a = w.arrays
    fx = a["fx"]
    wi = np.flatnonzero(won)
    cur = a["deal_region"][wi]
    amount = amount_all[wi]
    n_inv = a["deal_n_inv"][wi]
    parts = M.invoice_parts(amount, n_inv)
    # invoices, deal by deal, part by part
    di, pi = np.nonzero(np.arange(3)[None, :] < n_inv[:, None])
    inv_amt = parts[di, pi]
    inv_day = a["deal_inv_days"][wi][di, pi]
    inv_no = np.arange(di.size)
    sinks["invoices"].write(
        {
            "invoice_id": ids("INV-", inv_no, 9),
            "opportunity_id": ids("OPP-", wi[di], 8),
            "account_id": acc_ids.take(pa.array(a["deal_acc"][wi[di]])),
            "invoice_date": date(inv_day),
            "amount": money(inv_amt),
            "currency": take(M.CURRENCIES, cur[di]),
        }
    )
    invoiced_usd = float((np.round(inv_amt) * fx[cur[di], inv_day]).sum() / 100.0)
    # credit notes on the first invoice of ~5% of won deals
    first_inv = inv_no[pi == 0]  # one per won deal, in wi order
    cm = a["deal_credit"][wi]
    c_amt = np.round(a["deal_credit_frac"][wi][cm] * parts[cm, 0]).astype(np.int64)
    c_day = a["deal_credit_day"][wi][cm]
    sinks["credit_notes"].write(
        {
            "credit_note_id": ids("CRN-", np.arange(cm.sum()), 8),
            "invoice_id": ids("INV-", first_inv[cm], 9),
            "opportunity_id": ids("OPP-", wi[cm], 8),
            "credit_date": date(c_day),
            "amount": money(c_amt),
            "currency": take(M.CURRENCIES, cur[cm]),
            "reason": take(M.CREDIT_REASONS, a["deal_credit_reason"][wi][cm]),
        }
    )
    credits_usd = float((c_amt * fx[cur[cm], c_day]).sum() / 100.0)
    # commissions: rate x amount, paid on the 15th of the month after close, deal currency
    com = np.round(M.COMMISSION_RATE * amount).astype(np.int64)
    paid = a["deal_paid_day"][wi]
    sinks["commissions"].write(
        {
            "commission_id": ids("COM-", np.arange(wi.size), 8),
            "opportunity_id": ids("OPP-", wi, 8),
            "rep_id": rep_ids.take(pa.array(a["deal_owner"][wi])),
            "paid_date": date(paid),
            "amount": money(com),
            "currency": take(M.CURRENCIES, cur),
        }
    )
    commissions_usd = float((com * fx[cur, paid]).sum() / 100.0)
    # cost_to_serve: serve_rate(segment) x amount / 12 for 12 months after close, per account-month x noise
    acc = a["deal_acc"][wi]
    monthly = a["serve_rate"][a["deal_seg"][wi]] * amount / 12.0
    n_keys = w.preset.n_accounts * M.N_HORIZON_MONTHS
    tot = np.zeros(n_keys)
    for k in range(1, 13):
        m = a["deal_close_month"][wi] + k
        tot += np.bincount(acc * M.N_HORIZON_MONTHS + m, monthly, minlength=n_keys)
    keys = np.flatnonzero(tot > 0)
    ka, km = np.divmod(keys, M.N_HORIZON_MONTHS)
    cts = np.round(tot[keys] * a["acc_serve_noise"][ka, km]).astype(np.int64)
    kcur = a["acc_region"][ka]
    sinks["cost_to_serve"].write(
        {
            "account_id": acc_ids.take(pa.array(ka)),
            "month": date(M.MONTH_START_DAY[km]),
            "amount": money(cts),
            "currency": take(M.CURRENCIES, kcur),
        }
    )
    cts_usd = float((cts * fx[kcur, M.MONTH_START_DAY[km]]).sum() / 100.0)
    bookings_usd = float((amount * fx[cur, a["deal_close"][wi]]).sum() / 100.0)
    return {
        "invoiced_usd": invoiced_usd,
        "credits_usd": credits_usd,
        "commissions_usd": commissions_usd,
        "cost_to_serve_usd": cts_usd,
        "bookings_usd": bookings_usd,
    }
