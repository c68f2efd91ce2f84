"""Reliability tests: a tally of the faults injected and bad inputs tried, printed at the end.

Each test records what it did through the ``tally`` fixture; the summary is the proof that the
faults really happened (a kill that came too late would not count as survived).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pytest

# The publishing tests' PostgreSQL fixtures: CI's server, or one started for the session.
from tests.publishing.conftest import pg, pg_admin_dsn  # noqa: F401


@dataclass
class Tally:
    """Faults injected and survived, and bad inputs tried and refused, by kind."""

    injected: Counter[str] = field(default_factory=Counter)
    survived: Counter[str] = field(default_factory=Counter)
    bad_inputs: Counter[str] = field(default_factory=Counter)

    def fault(self, kind: str, *, count: int = 1) -> None:
        self.injected[kind] += count

    def survived_fault(self, kind: str, *, count: int = 1) -> None:
        self.survived[kind] += count

    def bad_input(self, kind: str, *, count: int = 1) -> None:
        self.bad_inputs[kind] += count


TALLY = Tally()


@pytest.fixture
def tally() -> Tally:
    return TALLY


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not (TALLY.injected or TALLY.bad_inputs):
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability")
    for kind in sorted(TALLY.injected):
        write(f"  fault {kind}: {TALLY.injected[kind]} injected, {TALLY.survived[kind]} survived")
    for kind in sorted(TALLY.bad_inputs):
        write(f"  bad input {kind}: {TALLY.bad_inputs[kind]} tried")
    write(
        f"reliability: {sum(TALLY.injected.values())} faults injected, "
        f"{sum(TALLY.survived.values())} survived; "
        f"{sum(TALLY.bad_inputs.values())} bad inputs tried, each refused or stored exactly"
    )
