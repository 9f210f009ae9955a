"""What a person sees: tables and progress, drawn by rich.

Shared by the ``fraudshop`` command and the lab tooling (the CLI sits above the lab, so this is the
lowest layer both reach). On a terminal, tables are boxed and coloured and long waits show a
spinner with the elapsed time; anywhere else (a pipe, a file, a test's captured output) tables are
plain aligned text with no width limit, and progress is left to the log.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TextIO

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

#: Plain text: the header, a dashed line under it, columns two spaces apart, no frame.
PLAIN_BOX = box.Box("    \n    \n -  \n    \n    \n    \n    \n    \n", ascii=True)
#: Wide enough that no table is ever wrapped or cut when the output is not a terminal.
_UNLIMITED_WIDTH = 10_000

#: Progress goes to stderr, so that a command's results on stdout can be piped.
progress_console = Console(stderr=True)


def cell_text(value: object) -> str:
    """How a value reads in a table: times to the millisecond, amounts to the cent, None as blank."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def table(columns: Sequence[str], rows: Sequence[Sequence[object]], plain: bool = False) -> Table:
    """A table of ``rows`` under ``columns``; numeric columns are right-aligned."""
    grid = Table(
        box=PLAIN_BOX if plain else box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0) if plain else (0, 1),
        pad_edge=False,
        show_edge=False,
        header_style="" if plain else "bold",
    )
    for index, column in enumerate(columns):
        values = [row[index] for row in rows if row[index] is not None]
        numeric = bool(values) and all(_is_number(value) for value in values)
        # Never wrapped nor cut: an id or a time is only useful whole (see print_table for narrow terminals).
        grid.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        # Text, not str: a value is shown as it is, never read as rich markup (a rejected record's
        # raw value can hold anything, "[/bold]" included).
        grid.add_row(*(Text(cell_text(value)) for value in row))
    return grid


def render_plain(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The table as plain text, without trailing spaces: what a pipe or a test reads."""
    buffer = io.StringIO()
    Console(file=buffer, width=_UNLIMITED_WIDTH, color_system=None).print(table(columns, rows, plain=True))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]], file: TextIO | None = None) -> None:
    """Print a table: rich on a terminal (and in Jupyter), plain text anywhere else."""
    console = Console(file=file)  # None: sys.stdout as it is when written to (a test's capture included)
    if console.is_jupyter:
        Console(width=_UNLIMITED_WIDTH).print(table(columns, rows))
    elif console.is_terminal:
        grid = table(columns, rows)
        # A table wider than the terminal keeps its width and lets the terminal wrap its lines, as
        # any long line: squeezed into the columns, ids and times would break into unreadable pieces.
        needed = Measurement.get(console, console.options.update_width(_UNLIMITED_WIDTH), grid).maximum
        if needed > console.width:
            console = Console(file=file, width=needed, force_terminal=True)
        console.print(grid)
    else:
        print(render_plain(columns, rows), file=file or sys.stdout, flush=True)


class Step:
    """A running step on screen: its line can say how far it got."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def update(self, description: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)


@contextmanager
def _log_above_progress(stderr_before: TextIO) -> Iterator[None]:
    """While a live display holds the terminal, rich replaces sys.stderr by a proxy that prints above
    it; logging's handlers still hold the real stderr, and would write through the display. Point
    them at the proxy meanwhile."""
    handlers = [
        handler
        for handler in logging.getLogger().handlers
        if type(handler) is logging.StreamHandler and handler.stream is stderr_before
    ]
    if sys.stderr is stderr_before:
        yield
        return
    for handler in handlers:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler in handlers:
            handler.setStream(stderr_before)


@contextmanager
def step(description: str) -> Iterator[Step]:
    """Show ``description`` with a spinner and the elapsed time while the block runs, on a terminal
    only (the log says the same for everyone else). Steps may nest; each keeps its line, with its
    final description, when it ends."""
    if not progress_console.is_terminal or progress_console.is_jupyter:
        yield Step(None, None)
        return
    stderr_before = sys.stderr
    progress = Progress(
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
        console=progress_console,
        redirect_stdout=sys.stdout.isatty(),  # a piped stdout keeps its own output
    )
    with progress, _log_above_progress(stderr_before):
        task = progress.add_task(description, total=1)
        yield Step(progress, task)
        progress.update(task, completed=1)
