"""Progress reporting for long jobs: a rich bar on a terminal, quiet otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Step(Protocol):
    """One running step; `advance(n)` moves its bar."""

    def advance(self, n: int = 1) -> None:
        """Add n units of done work."""


class Reporter(Protocol):
    """Something that can show steps of a long job."""

    def step(self, description: str, total: int | None) -> AbstractContextManager[Step]:
        """Run one step with a bar of `total` units."""


class _NullStep:
    def advance(self, n: int = 1) -> None:
        pass


class Quiet:
    """A reporter that shows nothing (library use, tests, the API)."""

    @contextmanager
    def step(self, description: str, total: int | None) -> Iterator[Step]:
        """Run a step silently."""
        yield _NullStep()


class RichReporter:
    """A reporter that draws rich progress bars on stderr."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)

    @contextmanager
    def step(self, description: str, total: int | None) -> Iterator[Step]:
        """Run a step with a transient bar; print a one-line summary when done."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)

            class _S:
                def advance(self, n: int = 1) -> None:
                    bar.advance(task, n)

            yield _S()


def default_reporter() -> Reporter:
    """A rich reporter when stderr is a terminal, else quiet."""
    return RichReporter() if sys.stderr.isatty() else Quiet()
