"""Demo company (placeholder docstring, expanded below)."""

from .generator import generate, simulate_deal_outcomes
from .presets import PRESETS, Preset

__all__ = ["PRESETS", "Preset", "generate", "simulate_deal_outcomes"]
