"""Size presets of the demo company."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    n_accounts: int
    n_opportunities: int
    n_reps: int
    activities_per_deal: float  # mean number of routine activities per deal (size-band weighted)
    chunk_deals: int = 50_000  # deals per chunk for the big tables (activities, stage history)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", 100, 400, 12, 19.0),
    "small": Preset("small", 1_000, 5_000, 40, 19.0),
    "default": Preset("default", 10_000, 50_000, 150, 19.0),
    "large": Preset("large", 150_000, 1_000_000, 1_500, 19.0),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown demo scale {name!r}; known: {', '.join(PRESETS)}") from None
