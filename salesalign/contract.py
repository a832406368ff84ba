"""The canonical raw contract: every table the pipeline ingests, whatever the source.

This module is the single source of truth for table names, column names, types, keys and
meaning. The demo generator writes it, the landing casts to it, the quality suites check it,
dbt sources mirror it and `make generate` renders it as Markdown for the docs.
Sources that speak another dialect (Salesforce, HubSpot, a finance database) map onto it.

Types are DuckDB SQL types. Money is DECIMAL(18,2) in the currency named on the same row;
rates are DOUBLE. Timestamps are naive UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MONEY = "DECIMAL(18,2)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True
    pii: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    domain: str  # "crm" or "finance"
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # column -> (table, column) it references
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the column that says when a record last changed: the latest version wins downstream
    updated_at: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, type_: str, description: str, *, nullable: bool = True, pii: bool = False) -> Column:
    return Column(name, type_, description, nullable, pii)


def _key(name: str, description: str) -> Column:
    return Column(name, "VARCHAR", description, nullable=False)


# Controlled vocabularies. Sources map their own values onto these.
STAGES = (
    "prospecting",
    "qualification",
    "discovery",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)
OPEN_STAGES = STAGES[:5]
PRACTICE_ACTIVITY_TYPES = (
    "discovery_workshop",
    "executive_sponsor_meeting",
    "proof_of_concept",
    "deep_discount_approval",
)
ROUTINE_ACTIVITY_TYPES = ("call", "email", "meeting", "demo", "proposal_prep")
ACTIVITY_TYPES = ROUTINE_ACTIVITY_TYPES + PRACTICE_ACTIVITY_TYPES
LEAD_SOURCES = ("inbound", "outbound", "partner", "event", "referral")


TABLES: tuple[Table, ...] = (
    # ---------------------------------------------------------------- CRM
    Table(
        "accounts",
        "crm",
        "Customer and prospect companies.",
        (
            _key("account_id", "Account key in the source CRM."),
            _c("account_name", "VARCHAR", "Company name."),
            _c("industry", "VARCHAR", "Industry (lower-case vocabulary of the source)."),
            _c("employee_count", "INTEGER", "Number of employees."),
            _c("annual_revenue", MONEY, "Annual revenue of the company, in `currency`."),
            _c("currency", "VARCHAR", "ISO 4217 currency of `annual_revenue`."),
            _c("region", "VARCHAR", "Sales region / territory (e.g. na, emea, apac)."),
            _c("country", "VARCHAR", "Country name or ISO code."),
            _c("created_at", "TIMESTAMP", "When the record was created in the CRM.", nullable=False),
            _c("updated_at", "TIMESTAMP", "When the record last changed.", nullable=False),
        ),
        ("account_id",),
        updated_at="updated_at",
    ),
    Table(
        "contacts",
        "crm",
        "People at accounts. Personal data: never leaves staging un-hashed.",
        (
            _key("contact_id", "Contact key."),
            _c("account_id", "VARCHAR", "Account the contact works for.", nullable=False),
            _c("first_name", "VARCHAR", "First name.", pii=True),
            _c("last_name", "VARCHAR", "Last name.", pii=True),
            _c("email", "VARCHAR", "E-mail address.", pii=True),
            _c("phone", "VARCHAR", "Phone number.", pii=True),
            _c("title", "VARCHAR", "Job title."),
            _c("created_at", "TIMESTAMP", "Created in the CRM.", nullable=False),
            _c("updated_at", "TIMESTAMP", "Last changed.", nullable=False),
        ),
        ("contact_id",),
        {"account_id": ("accounts", "account_id")},
        updated_at="updated_at",
    ),
    Table(
        "reps",
        "crm",
        "Sales reps (CRM users who own opportunities) with their hiring profile.",
        (
            _key("rep_id", "Rep key."),
            _c("rep_name", "VARCHAR", "Full name.", pii=True),
            _c("team", "VARCHAR", "Sales team."),
            _c("manager_id", "VARCHAR", "rep_id of the rep's manager (null for managers)."),
            _c("region", "VARCHAR", "Territory region the rep sells into."),
            _c("hire_date", "DATE", "First day in the role.", nullable=False),
            _c("prior_industry_experience", "BOOLEAN", "Hiring profile: sold into the industry before."),
            _c(
                "previous_role",
                "VARCHAR",
                "Hiring profile: role before joining (sdr, account_manager, consultant, other).",
            ),
            _c("years_experience", "INTEGER", "Hiring profile: years of sales experience at hire."),
            _c("quota", MONEY, "Annual bookings quota in USD."),
            _c("is_active", "BOOLEAN", "Still employed at export time.", nullable=False),
            _c("updated_at", "TIMESTAMP", "Last changed.", nullable=False),
        ),
        ("rep_id",),
        {"manager_id": ("reps", "rep_id")},
        updated_at="updated_at",
    ),
    Table(
        "products",
        "crm",
        "Products and list prices.",
        (
            _key("product_id", "Product key."),
            _c("product_name", "VARCHAR", "Product name."),
            _c("product_family", "VARCHAR", "Product family."),
            _c("list_price", MONEY, "List price per unit in USD."),
            _c("updated_at", "TIMESTAMP", "Last changed.", nullable=False),
        ),
        ("product_id",),
        updated_at="updated_at",
    ),
    Table(
        "opportunities",
        "crm",
        "Deals, open and closed, as the CRM shows them at export time (latest version wins).",
        (
            _key("opportunity_id", "Opportunity key."),
            _c("account_id", "VARCHAR", "Account the deal is with.", nullable=False),
            _c("owner_rep_id", "VARCHAR", "Rep who owns the deal.", nullable=False),
            _c("product_id", "VARCHAR", "Main product sold.", nullable=False),
            _c("lead_source", "VARCHAR", f"Where the lead came from ({', '.join(LEAD_SOURCES)})."),
            _c("currency", "VARCHAR", "ISO 4217 currency of the amounts.", nullable=False),
            _c("quantity", "INTEGER", "Units of the product."),
            _c("list_amount", MONEY, "Quantity x list price, before discount."),
            _c("amount", MONEY, "Net amount after discount (bookings if won)."),
            _c("discount", "DOUBLE", "Discount as a fraction of list amount, in [0, 1)."),
            _c("stage", "VARCHAR", f"Current stage ({', '.join(STAGES)}).", nullable=False),
            _c("is_closed", "BOOLEAN", "Closed (won or lost).", nullable=False),
            _c("is_won", "BOOLEAN", "Closed and won.", nullable=False),
            _c("created_at", "TIMESTAMP", "When the deal was opened.", nullable=False),
            _c("close_date", "DATE", "Actual close date if closed, expected close date if open."),
            _c("updated_at", "TIMESTAMP", "Last changed.", nullable=False),
        ),
        ("opportunity_id",),
        {
            "account_id": ("accounts", "account_id"),
            "owner_rep_id": ("reps", "rep_id"),
            "product_id": ("products", "product_id"),
        },
        updated_at="updated_at",
    ),
    Table(
        "opportunity_stage_history",
        "crm",
        "Every stage change of every opportunity.",
        (
            _key("history_id", "Stage-change key."),
            _c("opportunity_id", "VARCHAR", "The opportunity.", nullable=False),
            _c("stage", "VARCHAR", "Stage entered.", nullable=False),
            _c("changed_at", "TIMESTAMP", "When the stage was entered.", nullable=False),
            _c("amount", MONEY, "Opportunity amount at the change, in the opportunity currency."),
        ),
        ("history_id",),
        {"opportunity_id": ("opportunities", "opportunity_id")},
        updated_at="changed_at",
    ),
    Table(
        "activities",
        "crm",
        "Logged selling activities (tasks and events), including the sales practices.",
        (
            _key("activity_id", "Activity key."),
            _c("opportunity_id", "VARCHAR", "Deal the activity was for.", nullable=False),
            _c("account_id", "VARCHAR", "Account of the deal."),
            _c("rep_id", "VARCHAR", "Rep who did it.", nullable=False),
            _c("activity_type", "VARCHAR", f"Type ({', '.join(ACTIVITY_TYPES)}).", nullable=False),
            _c("started_at", "TIMESTAMP", "Start time.", nullable=False),
            _c("duration_minutes", "INTEGER", "Duration of rep time in minutes."),
        ),
        ("activity_id",),
        {
            "opportunity_id": ("opportunities", "opportunity_id"),
            "account_id": ("accounts", "account_id"),
            "rep_id": ("reps", "rep_id"),
        },
        updated_at="started_at",
    ),
    # ---------------------------------------------------------------- finance
    Table(
        "invoices",
        "finance",
        "Invoices raised for won deals (a deal may be invoiced in several parts).",
        (
            _key("invoice_id", "Invoice key."),
            _c("opportunity_id", "VARCHAR", "Deal invoiced.", nullable=False),
            _c("account_id", "VARCHAR", "Account invoiced."),
            _c("invoice_date", "DATE", "Invoice date.", nullable=False),
            _c("amount", MONEY, "Invoiced amount, in `currency`.", nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("invoice_id",),
        {"opportunity_id": ("opportunities", "opportunity_id"), "account_id": ("accounts", "account_id")},
        updated_at="invoice_date",
    ),
    Table(
        "credit_notes",
        "finance",
        "Credit notes against invoices (refunds, concessions). Amounts are positive.",
        (
            _key("credit_note_id", "Credit note key."),
            _c("invoice_id", "VARCHAR", "Invoice credited.", nullable=False),
            _c("opportunity_id", "VARCHAR", "Deal credited.", nullable=False),
            _c("credit_date", "DATE", "Credit date.", nullable=False),
            _c("amount", MONEY, "Credited amount (positive), in `currency`.", nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
            _c("reason", "VARCHAR", "Why the credit was given."),
        ),
        ("credit_note_id",),
        {"invoice_id": ("invoices", "invoice_id"), "opportunity_id": ("opportunities", "opportunity_id")},
        updated_at="credit_date",
    ),
    Table(
        "product_costs",
        "finance",
        "Cost of goods sold as a share of net revenue, by product and validity period.",
        (
            _key("product_id", "Product."),
            _c("valid_from", "DATE", "First day the rate applies.", nullable=False),
            _c("valid_to", "DATE", "Last day the rate applies (null = open-ended)."),
            _c("cogs_rate", "DOUBLE", "COGS as a fraction of net invoiced revenue, in [0, 1].",
               nullable=False),
        ),
        ("product_id", "valid_from"),
        {"product_id": ("products", "product_id")},
    ),
    Table(
        "rep_costs",
        "finance",
        "Fully loaded cost of one hour of a rep's time, by month.",
        (
            _key("rep_id", "Rep."),
            _c("month", "DATE", "First day of the month.", nullable=False),
            _c("loaded_cost_per_hour", MONEY, "Salary, benefits and overhead per working hour.",
               nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("rep_id", "month"),
        {"rep_id": ("reps", "rep_id")},
    ),
    Table(
        "commissions",
        "finance",
        "Commissions paid to reps on won deals.",
        (
            _key("commission_id", "Commission key."),
            _c("opportunity_id", "VARCHAR", "Deal the commission is for.", nullable=False),
            _c("rep_id", "VARCHAR", "Rep paid.", nullable=False),
            _c("paid_date", "DATE", "Payment date.", nullable=False),
            _c("amount", MONEY, "Commission, in `currency`.", nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("commission_id",),
        {"opportunity_id": ("opportunities", "opportunity_id"), "rep_id": ("reps", "rep_id")},
        updated_at="paid_date",
    ),
    Table(
        "cost_to_serve",
        "finance",
        "Cost of serving an account (support, success, onboarding) by month.",
        (
            _key("account_id", "Account served."),
            _c("month", "DATE", "First day of the month.", nullable=False),
            _c("amount", MONEY, "Cost in `currency`.", nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("account_id", "month"),
        {"account_id": ("accounts", "account_id")},
    ),
    Table(
        "fx_rates",
        "finance",
        "Daily FX rates: how many USD one unit of `currency` buys. USD itself has rate 1.",
        (
            _c("rate_date", "DATE", "Day the rate applies.", nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
            _c("usd_per_unit", "DOUBLE", "USD per one unit of `currency`.", nullable=False),
        ),
        ("rate_date", "currency"),
    ),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES_BY_NAME)

# Columns the landing adds to every raw row (not part of what sources deliver).
LOAD_METADATA: tuple[Column, ...] = (
    _c("_load_id", "VARCHAR", "Id of the load that brought the row (one per landed file).", nullable=False),
    _c("_source", "VARCHAR", "Source kind and name, e.g. `demo` or `files:/path`.", nullable=False),
    _c("_source_file", "VARCHAR", "File (or object) the row came from.", nullable=False),
    _c("_source_row", "BIGINT", "1-based row number within that file.", nullable=False),
    _c("_loaded_at", "TIMESTAMP", "When the row was landed (UTC).", nullable=False),
)


def table(name: str) -> Table:
    """Look a contract table up by name, with a clear error."""
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a raw contract table; known: {', '.join(TABLE_NAMES)}") from None


def to_markdown() -> str:
    """Render the contract as Markdown (docs/raw-contract.md, written by `make generate`)."""
    lines = [
        "# The raw contract",
        "",
        "Generated from `salesalign/contract.py` by `make generate`; do not edit by hand.",
        "Types are DuckDB SQL types; money is `DECIMAL(18,2)` in the currency on the same row.",
        "Every landed row also carries the load metadata columns "
        + ", ".join(f"`{c.name}`" for c in LOAD_METADATA)
        + ".",
        "",
        "Vocabularies: stages " + ", ".join(f"`{s}`" for s in STAGES)
        + "; activity types " + ", ".join(f"`{a}`" for a in ACTIVITY_TYPES)
        + " (the last four are the sales practices); lead sources "
        + ", ".join(f"`{s}`" for s in LEAD_SOURCES) + ".",
        "",
    ]
    for t in TABLES:
        lines += [f"## `{t.name}` ({t.domain})", "", t.description, ""]
        lines.append("Primary key: " + ", ".join(f"`{k}`" for k in t.primary_key) + ".")
        if t.foreign_keys:
            refs = ", ".join(f"`{c}` -> `{rt}.{rc}`" for c, (rt, rc) in t.foreign_keys.items())
            lines.append(f"References: {refs}.")
        lines += ["", "| column | type | null | description |", "|---|---|---|---|"]
        for c in t.columns:
            flags = "PII. " if c.pii else ""
            null = "yes" if c.nullable else "no"
            lines.append(f"| `{c.name}` | {c.type} | {null} | {flags}{c.description} |")
        lines.append("")
    return "\n".join(lines)
