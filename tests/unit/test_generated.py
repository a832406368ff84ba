"""Files derived from a declaration are current (`make generate` rewrites them)."""

from salesalign import generate


def test_every_generated_file_is_current():
    assert generate.stale() == [], "run `make generate` and commit the result"
