"""The raw contract, declared: every table the pipeline ingests, whatever the source, and what a
landed batch of it must satisfy.

This module is the single declaration of table names, column names, types, keys, meaning, the
controlled vocabularies (the sales practices among them) and the landing checks. The demo
generator writes it, the landing casts to it, and `make generate` derives from it the Great
Expectations suites in `expectations/`, the dbt sources and vocabulary macros, and
docs/raw-contract.md. Sources that speak another dialect (Salesforce, HubSpot, a finance database)
map onto it.

Types are DuckDB SQL types. Money is DECIMAL(18,2) in the currency named on the same row;
rates are DOUBLE. Timestamps are naive UTC.
"""

from __future__ import annotations

from salesalign.contract.spec import (
    BLOCKS,
    QUARANTINES,
    WARNS,
    Check,
    Column,
    Table,
    at_least,
    at_most,
    between,
    is_true,
    matches,
    non_negative,
    not_before,
    one_of,
)

MONEY = "DECIMAL(18,2)"


def _c(
    name: str, type_: str, description: str, *checks: Check, nullable: bool = True, pii: bool = False
) -> Column:
    return Column(name, type_, description, nullable, pii, checks)


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
CLOSED_STAGES = STAGES[5:]
# The sales practices: activity types whose effect on deals analytics estimates (causal.yml
# declares, for each of them, its outcomes and confounders).
PRACTICE_ACTIVITY_TYPES = (
    "discovery_workshop",
    "executive_sponsor_meeting",
    "proof_of_concept",
    "deep_discount_approval",
)
ROUTINE_ACTIVITY_TYPES = ("call", "email", "meeting", "demo", "proposal_prep")
ACTIVITY_TYPES = ROUTINE_ACTIVITY_TYPES + PRACTICE_ACTIVITY_TYPES
LEAD_SOURCES = ("inbound", "outbound", "partner", "event", "referral")
PREVIOUS_ROLES = ("sdr", "account_manager", "consultant", "other")

# ---------------------------------------------------------------- landing checks
# Every table also gets checks derived from its structure (salesalign/contract/gx.py); what their
# failures do is declared here.
REQUIRED = BLOCKS  # a key or a NOT NULL column is null
UNIQUE_IN_BATCH = BLOCKS  # a key appears twice in the batch
REDELIVERED = WARNS  # a key already landed comes back, but not as a newer version
NO_FX_RATE = BLOCKS  # a currency without FX rates: its amounts cannot be converted
SCHEMA = BLOCKS  # raw.<table> lacks a contract column, has another, or a column has another type
EMPTY_BATCH = BLOCKS


def orphan_policy(column: Column):
    """A reference to a row that does not exist: a required reference cannot join downstream, so the
    row is quarantined; an optional one is recorded."""
    return WARNS if column.nullable else QUARANTINES


FUTURE_TOLERANCE_HOURS = 24  # clocks and time zones of sources: a day ahead of the load is not a fault
VOLUME_RATIO_RANGE = (0.01, 20.0)  # batch rows against the average of the last previous loads
# Checks on every table's batch frame (row count, volume against the previous loads).
BATCH_CHECKS: tuple[Check, ...] = (
    at_least(1, EMPTY_BATCH, "a batch of {table} must not be empty").on("row_count"),
    between(
        *VOLUME_RATIO_RANGE,
        WARNS,
        "the batch must hold between 1/100 and 20 times the rows of the previous loads "
        "(average of the last 5)",
    ).on("volume_ratio_vs_previous"),
)

IS_CLOSED, IS_OPEN, IS_WON = ("is_closed", True), ("is_closed", False), ("is_won", True)


def not_future(reason: str = "", *, when: tuple[str, bool] | None = None) -> Check:
    """The date or time lies no more than FUTURE_TOLERANCE_HOURS after the load that brought it."""
    reason = reason or (
        f"{{column}} must not lie more than {FUTURE_TOLERANCE_HOURS} h after the load (future date)"
    )
    return at_most(FUTURE_TOLERANCE_HOURS, BLOCKS, reason, when=when).on("_hours_after_load__{column}")


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
            _c("employee_count", "INTEGER", "Number of employees.", at_least(1, WARNS)),
            _c("annual_revenue", MONEY, "Annual revenue of the company, in `currency`.",
               non_negative(QUARANTINES)),
            _c("currency", "VARCHAR", "ISO 4217 currency of `annual_revenue`."),
            _c("region", "VARCHAR", "Sales region / territory (e.g. na, emea, apac)."),
            _c("country", "VARCHAR", "Country name or ISO code."),
            _c("created_at", "TIMESTAMP", "When the record was created in the CRM; null when the source "
               "does not say.", not_future()),
            _c(
                "updated_at",
                "TIMESTAMP",
                "When the record last changed.",
                not_future(),
                not_before("created_at", WARNS, "updated_at must not be before created_at"),
                nullable=False,
            ),
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
            _c(
                "email",
                "VARCHAR",
                "E-mail address.",
                matches(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", WARNS, "email must look like an e-mail address"),
                pii=True,
            ),
            _c("phone", "VARCHAR", "Phone number.", pii=True),
            _c("title", "VARCHAR", "Job title."),
            _c("created_at", "TIMESTAMP", "Created in the CRM.", not_future(), nullable=False),
            _c("updated_at", "TIMESTAMP", "Last changed.", not_future(), nullable=False),
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
            _c(
                "hire_date",
                "DATE",
                "First day in the role; null when the source does not know it (tenure and ramp are then "
                "not measured, never assumed).",
            ),
            _c("prior_industry_experience", "BOOLEAN", "Hiring profile: sold into the industry before."),
            _c(
                "previous_role",
                "VARCHAR",
                f"Hiring profile: role before joining ({', '.join(PREVIOUS_ROLES)}).",
                one_of(PREVIOUS_ROLES, WARNS, "previous_role must be one of the hiring-profile vocabulary"),
            ),
            _c(
                "years_experience",
                "INTEGER",
                "Hiring profile: years of sales experience at hire.",
                between(0, 60, WARNS, "years_experience must be between 0 and 60"),
            ),
            _c("quota", MONEY, "Annual bookings quota in USD.", non_negative(QUARANTINES)),
            _c("is_active", "BOOLEAN", "Still employed at export time; null when the source does not say."),
            _c("updated_at", "TIMESTAMP", "Last changed.", not_future(), nullable=False),
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
            _c("list_price", MONEY, "List price per unit in USD.", non_negative(QUARANTINES)),
            _c("updated_at", "TIMESTAMP", "Last changed.", not_future(), nullable=False),
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
            _c(
                "account_id",
                "VARCHAR",
                "Account the deal is with; null when the source does not know it (the deal keeps its "
                "row in the marts with the unknown account).",
            ),
            _c(
                "owner_rep_id",
                "VARCHAR",
                "Rep who owns the deal; null when the source does not know it (the deal keeps its row "
                "in the marts with the unknown rep).",
            ),
            _c(
                "product_id",
                "VARCHAR",
                "Main product sold; null when the source does not know it (the deal keeps its row in "
                "the marts with the unknown product, and no COGS).",
            ),
            _c(
                "lead_source",
                "VARCHAR",
                f"Where the lead came from ({', '.join(LEAD_SOURCES)}).",
                one_of(LEAD_SOURCES, WARNS, "lead_source must be in the contract's lead source vocabulary"),
            ),
            _c(
                "currency",
                "VARCHAR",
                "ISO 4217 currency of the amounts; null only on a deal without amounts (an export "
                "without money).",
            ),
            _c("quantity", "INTEGER", "Units of the product.", at_least(1, QUARANTINES)),
            _c("list_amount", MONEY, "Quantity x list price, before discount.", non_negative(QUARANTINES)),
            _c("amount", MONEY, "Net amount after discount (bookings if won).", non_negative(QUARANTINES)),
            _c(
                "discount",
                "DOUBLE",
                "Discount as a fraction of list amount, in [0, 1).",
                between(0, 1, QUARANTINES, "discount must be in [0, 1)", strict_max=True),
            ),
            _c(
                "stage",
                "VARCHAR",
                f"Current stage ({', '.join(STAGES)}).",
                one_of(STAGES, BLOCKS, "stage must be in the contract's stage vocabulary"),
                one_of(("closed_won",), BLOCKS, "a won deal must be in stage closed_won", when=IS_WON),
                one_of(CLOSED_STAGES, BLOCKS, "a closed deal must be in a closed stage", when=IS_CLOSED),
                one_of(OPEN_STAGES, BLOCKS, "an open deal must be in an open stage", when=IS_OPEN),
                nullable=False,
            ),
            _c("is_closed", "BOOLEAN", "Closed (won or lost).", nullable=False),
            _c("is_won", "BOOLEAN", "Closed and won.", nullable=False),
            _c("created_at", "TIMESTAMP", "When the deal was opened.", not_future(), nullable=False),
            _c(
                "close_date",
                "DATE",
                "Actual close date if closed, expected close date if open.",
                not_future(
                    f"a closed deal's close_date must not lie more than {FUTURE_TOLERANCE_HOURS} h after "
                    "the load (future date)",
                    when=IS_CLOSED,
                ),
            ),
            _c("updated_at", "TIMESTAMP", "Last changed.", not_future(), nullable=False),
        ),
        ("opportunity_id",),
        {
            "account_id": ("accounts", "account_id"),
            "owner_rep_id": ("reps", "rep_id"),
            "product_id": ("products", "product_id"),
        },
        updated_at="updated_at",
        rules=(
            between(-1, 1, WARNS, "amount must equal list_amount x (1 - discount) within 1 currency unit")
            .on("_amount_minus_discounted_list"),
            at_least(0, QUARANTINES, "close_date must not be before created_at").on("_days_created_to_close"),
            is_true(QUARANTINES, "a deal with an amount must name its currency").on("_amounts_have_currency"),
            at_most(1095, WARNS, "a closed deal's sales cycle must be at most 3 years", when=IS_CLOSED)
            .on("_days_created_to_close"),
        ),
    ),
    Table(
        "opportunity_stage_history",
        "crm",
        "Every stage change of every opportunity.",
        (
            _key("history_id", "Stage-change key."),
            _c("opportunity_id", "VARCHAR", "The opportunity.", nullable=False),
            _c(
                "stage",
                "VARCHAR",
                "Stage entered.",
                one_of(STAGES, BLOCKS, "stage must be in the contract's stage vocabulary"),
                nullable=False,
            ),
            _c("changed_at", "TIMESTAMP", "When the stage was entered.", not_future(), nullable=False),
            _c(
                "amount",
                MONEY,
                "Opportunity amount at the change, in the opportunity currency.",
                non_negative(QUARANTINES),
            ),
        ),
        ("history_id",),
        {"opportunity_id": ("opportunities", "opportunity_id")},
        updated_at="changed_at",
        rules=(
            # the opportunity's creation time and the change may come from two clocks
            at_least(
                -FUTURE_TOLERANCE_HOURS,
                WARNS,
                "a stage change must not be before the opportunity was created",
            ).on("_hours_after_opportunity_created"),
        ),
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
            _c(
                "activity_type",
                "VARCHAR",
                f"Type ({', '.join(ACTIVITY_TYPES)}).",
                one_of(ACTIVITY_TYPES, BLOCKS, "activity_type must be in the contract's activity vocabulary"),
                nullable=False,
            ),
            _c("started_at", "TIMESTAMP", "Start time.", not_future(), nullable=False),
            _c(
                "duration_minutes",
                "INTEGER",
                "Duration of rep time in minutes.",
                between(1, 7 * 24 * 60, QUARANTINES, "duration_minutes must be between 1 minute and 7 days"),
            ),
        ),
        ("activity_id",),
        {
            "opportunity_id": ("opportunities", "opportunity_id"),
            "account_id": ("accounts", "account_id"),
            "rep_id": ("reps", "rep_id"),
        },
        updated_at="started_at",
        rules=(
            is_true(WARNS, "account_id must be the account of the activity's opportunity")
            .on("_account_matches_opportunity"),
        ),
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
            _c("invoice_date", "DATE", "Invoice date.", not_future(), nullable=False),
            _c("amount", MONEY, "Invoiced amount, in `currency`.", non_negative(QUARANTINES), nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("invoice_id",),
        {"opportunity_id": ("opportunities", "opportunity_id"), "account_id": ("accounts", "account_id")},
        updated_at="invoice_date",
        rules=(
            is_true(WARNS, "only won deals are invoiced").on("_opportunity_is_won"),
            between(0, 365, WARNS, "an invoice must be dated between the close date and 1 year after it")
            .on("_days_after_close"),
        ),
        reconciliation=(
            between(
                0.95,
                1.05,
                WARNS,
                "invoiced totals per close month must be within 5% of the bookings of won deals",
                mostly=0.9,
            ).on("invoiced_to_booked"),
        ),
    ),
    Table(
        "credit_notes",
        "finance",
        "Credit notes against invoices (refunds, concessions). Amounts are positive.",
        (
            _key("credit_note_id", "Credit note key."),
            _c("invoice_id", "VARCHAR", "Invoice credited.", nullable=False),
            _c("opportunity_id", "VARCHAR", "Deal credited.", nullable=False),
            _c("credit_date", "DATE", "Credit date.", not_future(), nullable=False),
            _c("amount", MONEY, "Credited amount (positive), in `currency`.", non_negative(QUARANTINES),
               nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
            _c("reason", "VARCHAR", "Why the credit was given."),
        ),
        ("credit_note_id",),
        {"invoice_id": ("invoices", "invoice_id"), "opportunity_id": ("opportunities", "opportunity_id")},
        updated_at="credit_date",
        rules=(at_most(1, WARNS, "a credit note must not exceed its invoice").on("_share_of_invoice"),),
    ),
    Table(
        "product_costs",
        "finance",
        "Cost of goods sold as a share of net revenue, by product and validity period.",
        (
            _key("product_id", "Product."),
            _c("valid_from", "DATE", "First day the rate applies.", nullable=False),
            _c("valid_to", "DATE", "Last day the rate applies (null = open-ended)."),
            _c(
                "cogs_rate",
                "DOUBLE",
                "COGS as a fraction of net invoiced revenue, in [0, 1].",
                between(0, 1, QUARANTINES, "cogs_rate must be in [0, 1]"),
                nullable=False,
            ),
        ),
        ("product_id", "valid_from"),
        {"product_id": ("products", "product_id")},
        rules=(at_least(0, QUARANTINES, "valid_to must not be before valid_from").on("_validity_days"),),
    ),
    Table(
        "rep_costs",
        "finance",
        "Fully loaded cost of one hour of a rep's time, by month.",
        (
            _key("rep_id", "Rep."),
            _c("month", "DATE", "First day of the month.", nullable=False),
            _c(
                "loaded_cost_per_hour",
                MONEY,
                "Salary, benefits and overhead per working hour.",
                at_most(1000, WARNS, "loaded_cost_per_hour above 1000 looks like cents"),
                nullable=False,
            ),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("rep_id", "month"),
        {"rep_id": ("reps", "rep_id")},
        rules=(one_of((1,), WARNS, "month must be the first day of a month").on("_day_of_month"),),
    ),
    Table(
        "commissions",
        "finance",
        "Commissions paid to reps on won deals.",
        (
            _key("commission_id", "Commission key."),
            _c("opportunity_id", "VARCHAR", "Deal the commission is for.", nullable=False),
            _c("rep_id", "VARCHAR", "Rep paid.", nullable=False),
            _c("paid_date", "DATE", "Payment date.", not_future(), nullable=False),
            _c("amount", MONEY, "Commission, in `currency`.", non_negative(QUARANTINES), nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("commission_id",),
        {"opportunity_id": ("opportunities", "opportunity_id"), "rep_id": ("reps", "rep_id")},
        updated_at="paid_date",
        rules=(
            is_true(WARNS, "commissions are paid on won deals only").on("_opportunity_is_won"),
            between(0, 365, WARNS, "a commission must be paid between the close date and 1 year after it")
            .on("_days_after_close"),
        ),
    ),
    Table(
        "cost_to_serve",
        "finance",
        "Cost of serving an account (support, success, onboarding) by month.",
        (
            _key("account_id", "Account served."),
            _c("month", "DATE", "First day of the month.", nullable=False),
            _c("amount", MONEY, "Cost in `currency`.", non_negative(QUARANTINES), nullable=False),
            _c("currency", "VARCHAR", "ISO 4217 currency.", nullable=False),
        ),
        ("account_id", "month"),
        {"account_id": ("accounts", "account_id")},
        rules=(one_of((1,), WARNS, "month must be the first day of a month").on("_day_of_month"),),
    ),
    Table(
        "fx_rates",
        "finance",
        "Daily FX rates: how many USD one unit of `currency` buys. USD itself has rate 1.",
        (
            _c("rate_date", "DATE", "Day the rate applies.", nullable=False),
            _c(
                "currency",
                "VARCHAR",
                "ISO 4217 currency.",
                matches("^[A-Z]{3}$", BLOCKS, "currency must be an ISO 4217 code (three capital letters)"),
                nullable=False,
            ),
            _c(
                "usd_per_unit",
                "DOUBLE",
                "USD per one unit of `currency`.",
                between(0, None, BLOCKS, "usd_per_unit must be positive", strict_min=True),
                nullable=False,
            ),
        ),
        ("rate_date", "currency"),
    ),
)

# Custom attributes: extra source columns a mapping profile keeps (`attributes:` of a profile table),
# one row per record and attribute, keyed by the record's id. A side table, not one of TABLES: only
# profile sources deliver it, each landing replaces that source's snapshot of the entity's attributes,
# and causal.yml names its attributes as segment dimensions or confounders.
ATTRIBUTES = Table(
    "attributes",
    "crm",
    "Custom attributes of contract records that the contract has no column for (e.g. competitor type).",
    (
        _key("entity", "The contract table of the record (opportunities, accounts, ...)."),
        _key("entity_id", "The record's key in that table."),
        _key("name", "Attribute name, as the profile declares it (lower-case snake case)."),
        _c("value", "VARCHAR", "The value, as text."),
    ),
    ("entity", "entity_id", "name"),
)

TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in TABLES}
TABLE_NAMES: tuple[str, ...] = tuple(TABLES_BY_NAME)
DOMAINS = {"crm": "CRM", "finance": "Finance"}  # dbt source name -> what its tables hold

# Columns the landing adds to every raw row (not part of what sources deliver).
LOAD_METADATA: tuple[Column, ...] = (
    _c("_load_id", "VARCHAR", "Id of the load that brought the row (one per landed file).", nullable=False),
    _c("_source", "VARCHAR", "Source kind and name, e.g. `demo` or `files:/path`.", nullable=False),
    _c("_source_file", "VARCHAR", "File (or object) the row came from.", nullable=False),
    _c("_source_row", "BIGINT", "1-based row number within that file.", nullable=False),
    _c("_loaded_at", "TIMESTAMP", "When the row was landed (UTC).", nullable=False),
)

# How stale raw may get before dbt's source freshness warns / fails (days since the last load).
FRESHNESS_WARN_DAYS, FRESHNESS_ERROR_DAYS = 2, 7


def table(name: str) -> Table:
    """Look a contract table up by name, with a clear error."""
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a raw contract table; known: {', '.join(TABLE_NAMES)}") from None
