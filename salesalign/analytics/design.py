"""Design matrices from declared confounders: numeric (standardised), binary, categorical (dummies)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Design:
    X: np.ndarray  # first column is the intercept
    names: list[str]  # column names, "const" first; dummies are "<confounder>=<level>"

    @property
    def covariates(self) -> slice:
        """The columns that are covariates (everything but the intercept)."""
        return slice(1, None)


def design_matrix(frame: pd.DataFrame, confounders: dict[str, str], min_level_count: int = 10) -> Design:
    """Build X from ``{column: kind}``.

    Numeric columns are standardised (numerical stability of the logit); missing values get the
    median and a ``<name>:missing`` indicator. Categorical levels with fewer than ``min_level_count``
    rows are pooled into ``other``; the most frequent level is the reference.
    """
    n = len(frame)
    cols: list[np.ndarray] = [np.ones(n)]
    names = ["const"]
    for name, kind in confounders.items():
        s = frame[name]
        if kind == "categorical":
            v = s.astype("string").fillna("unknown").astype(str)
            counts = v.value_counts()
            rare = counts.index[counts < min_level_count]
            if len(rare):
                v = v.where(~v.isin(rare), "other")
                counts = v.value_counts()
            for level in counts.index[1:]:  # most frequent level is the reference
                cols.append((v == level).to_numpy(float))
                names.append(f"{name}={level}")
            continue
        x = pd.to_numeric(s.astype("float64") if kind == "binary" else s, errors="coerce").to_numpy(float)
        missing = np.isnan(x)
        if missing.any():
            x = np.where(missing, np.nanmedian(x) if (~missing).any() else 0.0, x)
            cols.append(missing.astype(float))
            names.append(f"{name}:missing")
        if kind == "numeric":
            sd = x.std()
            x = (x - x.mean()) / sd if sd > 0 else x - x.mean()
        cols.append(x)
        names.append(name)
    return Design(np.column_stack(cols), names)
