"""The elements the raw contract is declared with: columns, tables, and the checks on landed rows.

A `Check` is one Great Expectations expectation on a column of a landed batch: the expectation
type and its arguments, what a failure does (`Policy`) and the sentence people read when it fails.
Checks attached to a `Column` judge that column (or a fact computed from it); a table's `rules` name
their column, usually a computed fact (`salesalign/quality/frames.py` computes every `_`-column).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# What a failure means, as written into each expectation's `meta` (read by salesalign.quality.validate).
BLOCKING, WARNING = "blocking", "warning"  # severity: the batch must not flow downstream / recorded only
FAIL_BATCH, QUARANTINE = "fail_batch", "quarantine"  # counts against the batch / rows are set aside


@dataclass(frozen=True)
class Policy:
    """What a failed check does: its severity and whether the offending rows are quarantined."""

    severity: str
    on_failure: str


BLOCKS = Policy(BLOCKING, FAIL_BATCH)
WARNS = Policy(WARNING, FAIL_BATCH)
QUARANTINES = Policy(WARNING, QUARANTINE)  # the rows go to the quarantine ledger; the batch goes on


@dataclass(frozen=True)
class Check:
    """One expectation on a column of a validated frame.

    `column` is the frame column the expectation reads; on a check attached to a contract column it
    may be a template with `{column}` (a fact computed from that column) or None (the column itself).
    `when` restricts the check to the rows where a boolean column has the given value.
    """

    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_between
    arguments: dict = field(default_factory=dict)  # its arguments besides the column
    policy: Policy = BLOCKS
    reason: str = ""
    when: tuple[str, bool] | None = None
    column: str | None = None

    def on(self, column: str) -> Check:
        """The same check on the given column (for table rules and computed facts)."""
        return replace(self, column=column)

    def resolved(self, column: str) -> Check:
        """The check as attached to `column`: its frame column and reason with `{column}` filled in."""
        target = (self.column or "{column}").replace("{column}", column)
        return replace(self, column=target, reason=self.reason.replace("{column}", column))


def between(
    min_value: float | None = None,
    max_value: float | None = None,
    policy: Policy = BLOCKS,
    reason: str = "",
    *,
    strict_min: bool = False,
    strict_max: bool = False,
    mostly: float | None = None,
    when: tuple[str, bool] | None = None,
) -> Check:
    """Values in [min_value, max_value] (either side open when None; nulls pass)."""
    arguments: dict = {}
    if min_value is not None:
        arguments["min_value"] = float(min_value)
    if max_value is not None:
        arguments["max_value"] = float(max_value)
    if strict_min:
        arguments["strict_min"] = True
    if strict_max:
        arguments["strict_max"] = True
    if mostly is not None:
        arguments["mostly"] = mostly
    return Check("expect_column_values_to_be_between", arguments, policy, reason, when)


def at_least(value: float, policy: Policy, reason: str = "", *, when=None) -> Check:
    return between(value, None, policy, reason or f"{{column}} must be at least {value}", when=when)


def non_negative(policy: Policy, reason: str = "{column} must be non-negative") -> Check:
    return between(0, None, policy, reason)


def at_most(value: float, policy: Policy, reason: str, *, when=None) -> Check:
    return between(None, value, policy, reason, when=when)


def one_of(values, policy: Policy, reason: str, *, when: tuple[str, bool] | None = None) -> Check:
    """Values in a vocabulary (nulls pass)."""
    return Check("expect_column_values_to_be_in_set", {"value_set": list(values)}, policy, reason, when)


def is_true(policy: Policy, reason: str) -> Check:
    """A computed boolean fact holds (null, i.e. not applicable, passes)."""
    return one_of((True,), policy, reason)


def matches(regex: str, policy: Policy, reason: str) -> Check:
    return Check("expect_column_values_to_match_regex", {"regex": regex}, policy, reason)


def not_before(other: str, policy: Policy, reason: str) -> Check:
    """The column is on or after `other` on every row."""
    return Check(
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_B": other, "or_equal": True},
        policy,
        reason,
    )


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True
    pii: bool = False
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class Table:
    name: str
    domain: str  # "crm" or "finance": the dbt source it belongs to
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    # column -> (table, column) it references
    foreign_keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the column that says when a record last changed: the latest version wins downstream
    updated_at: str | None = None
    # checks across columns, rows or tables, on the facts the quality frames compute (`_`-columns)
    rules: tuple[Check, ...] = ()
    # checks on the table's reconciliation frame (invoices: invoiced against booked per month)
    reconciliation: tuple[Check, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def row_checks(self) -> list[Check]:
        """The declared checks on the table's landed rows, each on its frame column: column checks
        in column order, then the table rules."""
        return [check.resolved(c.name) for c in self.columns for check in c.checks] + list(self.rules)
