"""The property tests run the parsers in strict mode: a rule that raises fails the test instead of
becoming a counted RuleError (which is how the daemon survives such a bug)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailpulse.parsers.results import set_strict


# per test, not per session: a session fixture of this directory would stay active for the tests that run
# after it (tests/unit), where a rule that raises must be counted, not raised
@pytest.fixture(autouse=True)
def _strict_parsers() -> Iterator[None]:
    set_strict(True)
    yield
    set_strict(False)
