"""Files derived from a declaration are current (`make generate` rewrites them), and a hand edit to
any of them is drift that the check reports."""

from functools import cache

import pytest

from salesalign import generate
from salesalign.contract import dbt


def test_every_generated_file_is_current():
    assert generate.stale() == [], "run `make generate` and commit the result"


@cache
def _outputs() -> list[tuple[str, generate.Generated]]:
    return [(g.__name__, g()) for g in generate.GENERATORS]


GENERATED = sorted(rel for _, out in _outputs() for rel in out.files)


def _serve(monkeypatch, edit) -> None:
    """Make the generators produce what they produce now, passed through `edit(rel, text)` (None: the
    file is not produced): the repository's files then stand where a hand edit would put them."""
    fakes = []
    for name, out in _outputs():
        files = {rel: edit(rel, text) for rel, text in out.files.items()}
        files = {rel: text for rel, text in files.items() if text is not None}
        fakes.append(lambda files=files, owns=out.owns: generate.Generated(files, owns))
        fakes[-1].__name__ = name
    monkeypatch.setattr(generate, "GENERATORS", tuple(fakes))


@pytest.mark.parametrize("rel", GENERATED)
def test_a_hand_edit_to_any_generated_file_is_drift(monkeypatch, rel):
    # The file on disk differs from the generator's text by one line, as after a hand edit.
    _serve(monkeypatch, lambda r, text: text + "# edited\n" if r == rel else text)
    assert generate.stale() == [rel]


def test_a_file_no_generator_makes_in_an_owned_folder_is_drift(monkeypatch):
    owned = sorted(
        rel for _, out in _outputs() for rel in out.files if any(rel.startswith(f"{o}/") for o in out.owns)
    )
    assert any(r.startswith("expectations/expectations/raw/") for r in owned)
    left_over = next(r for r in owned if r.endswith("/rows.json"))
    _serve(monkeypatch, lambda r, text: None if r == left_over else text)
    assert generate.stale() == [f"{left_over} (no generator makes it)"]


def test_the_practice_columns_block_of_fct_deal_margin_is_regenerated_and_the_rest_kept():
    current = (generate.REPO / dbt.DEAL_MARGIN).read_text(encoding="utf-8")
    assert dbt.deal_margin_yaml(current) == current
    inside = current.replace("Hours of proof of concept activities", "Hours of PoC activities")
    assert inside != current and dbt.deal_margin_yaml(inside) == current  # a hand edit inside is drift
    outside = current.replace("Opportunity key (one row per closed deal).", "Opportunity key.")
    assert outside != current and dbt.deal_margin_yaml(outside) == outside  # hand-written part: kept
    with pytest.raises(ValueError, match="markers"):
        dbt.deal_margin_yaml(current.replace(dbt.PRACTICES_END, ""))
