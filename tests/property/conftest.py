"""The property tests run the parsers in strict mode: a rule that raises fails the test instead of
becoming a counted RuleError (which is how the daemon survives such a bug)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parsers.results import set_strict


@pytest.fixture(autouse=True, scope="session")
def _strict_parsers() -> Iterator[None]:
    set_strict(True)
    yield
    set_strict(False)
