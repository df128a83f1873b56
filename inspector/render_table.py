"""The one table of every text renderer, and the one way text reaches the terminal: nothing is ever cut to fit.

A figure, id, file name, URL or command is one word that never wraps, folds or ends in "…"; prose cells wrap at
spaces only. A table too wide for the terminal stacks (its key columns repeated beside as many others as fit),
else shows one block per row; a single word wider than the terminal runs past its edge, as a terminal soft-wraps
a long line, rather than being cut (`emit` prints with crop=False)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from .results import frozen

# One look for every table: a rule under the header, no outer frame (what `check` and `compare` used to draw heavy)
BOX = box.SIMPLE_HEAD

# A prose column is never narrower than this (or its longest cell): narrower, a phrase becomes a tower of
# one-word lines ("4,096" / "tokens" / "(the" / ...); the table stacks instead.
PROSE_MIN = 20

# Where prose never breaks a line: inside a figure's phrase ("(bound 139)", "= 656,619,520 B", "4,096 tokens",
# "-ngl 33"). One table of these for every renderer; a renderer may also write U+00A0 where a break is wrong.
GLUE = re.compile(
    r"(?<=\bbound) (?=\d)|(?<==) (?=[-+]?\d)|(?<=-ngl) (?=\d)|(?<=\bx) (?=\d)|(?<=\d) (?=x\b)"
    r"|(?<=\d) (?=(?:B|KiB|MiB|GiB|GB|MB|tokens|tokens/s|bytes|parameters|layers|tensors|files?)\b)"
)
NBSP = "\u00a0"


class Prose:
    """Text that wraps at spaces only where GLUE allows, never inside a word, and ends no line in a figure's
    unit. rich wraps at any space, U+00A0 included, so a phrase such as "(bound" / "139)" would come apart."""

    def __init__(self, text: str | Text, style: str = "") -> None:
        self.text = text.copy() if isinstance(text, Text) else Text.from_markup(text)
        if style:
            self.text.stylize(style)
        self.glued = GLUE.sub(NBSP, self.text.plain)

    def _words(self) -> list[str]:
        return [w for line in self.glued.split("\n") for w in line.split(" ") if w]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((cell_len(line) for line in self.glued.split("\n")), default=0)
        word = max((cell_len(w) for w in self._words()), default=0)
        return Measurement(word, longest)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, offset = options.max_width, 0
        for line in self.glued.split("\n"):
            start, end = offset, offset  # the current output line: text[start:end]
            for match in re.finditer(r"[^ ]+", line):
                a, b = offset + match.start(), offset + match.end()
                if end > start and cell_len(self.glued[start:b]) > width:
                    yield self._line(start, end)
                    start = a
                end = b
            yield self._line(start, end)
            offset += len(line) + 1

    def _line(self, start: int, end: int) -> Text:
        piece = self.text[start:end]
        piece.plain = piece.plain.replace(NBSP, " ")  # same length: the styles stay where they were
        piece.no_wrap, piece.overflow = True, "ignore"
        return piece


@frozen
class Col:
    """A column of a `Fitted` table. Numbers, ids and verdicts never wrap (`wrap=False`); prose may, at spaces."""

    header: str
    justify: str = "left"
    wrap: bool = False
    optional: bool = False  # dropped first when the table is too wide (a decoration such as the bar)
    style: str = ""


class Fitted:
    """A table that never cuts a cell or drops a requested column, whatever the terminal's width.

    Whole when every column fits; else stacked: the first `key` columns (the row's name) repeated with as
    many of the others as fit, table after table; else, when even one column beside the key is too wide,
    one block per row ("header  value" lines; without headers, the key's line and the rest on the next).
    stack=False goes from whole to blocks directly (a term's name and its arithmetic). rich alone would shrink
    no_wrap columns to an ellipsis and crop the rest of the line."""

    def __init__(
        self, columns: Sequence[Col], rows: Iterable[Sequence[Any]], *, key: int = 1, stack: bool = True, **table: Any
    ) -> None:
        self.columns, self.rows, self.key, self.table = list(columns), [list(r) for r in rows], key, table
        self.stack = stack

    def _table(self, chosen: Sequence[int]) -> Table:
        table = Table(**{"header_style": "bold", "pad_edge": False, "box": None, **self.table})
        for i in chosen:
            c = self.columns[i]
            cells = [c.header, *(r[i] for r in self.rows)]
            # rich measures a cell by its longest word even when it may not wrap: the whole cell is its minimum;
            # a prose cell's minimum is its longest word, and PROSE_MIN where it has more to say
            whole = max(_cell_width(cell) for cell in cells)
            if c.wrap:
                whole = min(whole, max(PROSE_MIN, max(_word_width(Prose(_text(cell)).glued) for cell in cells)))
            table.add_column(
                c.header, justify=c.justify, no_wrap=not c.wrap, overflow="fold" if c.wrap else "crop",
                min_width=whole, style=c.style or None,
            )  # fmt: skip
        for row in self.rows:
            table.add_row(*(Prose(_text(row[i])) if self.columns[i].wrap else row[i] for i in chosen))
        return table

    @staticmethod
    def _fits(console: Console, options: ConsoleOptions, table: Table) -> bool:
        # measured unbounded: rich clamps a measurement to the width it is given
        return Measurement.get(console, options.update_width(10**6), table).minimum <= options.max_width

    @staticmethod
    def _sized(console: Console, options: ConsoleOptions, table: Table) -> Table:
        """Widths set for the prose columns so that the table takes the width exactly, each at least its
        minimum: rich's own shrinking gives up when two prose columns reach the same width and crops them all."""
        unbounded = options.update_width(10**6)
        ranges = [table._measure_column(console, unbounded, column) for column in table.columns]
        whole = Measurement.get(console, unbounded, table)
        if whole.maximum <= options.max_width:
            return table
        extra = whole.minimum - sum(r.minimum for r in ranges)  # borders and padding
        prose = [i for i, column in enumerate(table.columns) if not column.no_wrap]
        budget = options.max_width - extra - sum(r.minimum for r in ranges)
        slack = sum(ranges[i].maximum - ranges[i].minimum for i in prose) or 1
        for i in prose:
            share = budget * (ranges[i].maximum - ranges[i].minimum) // slack
            # a column's width excludes its padding, which the measurement includes
            padding = ranges[i].minimum - (table.columns[i].min_width or 0) if table.columns[i].min_width else 0
            table.columns[i].width = ranges[i].minimum + share - padding
        return table

    def layouts(self, console: Console, options: ConsoleOptions) -> list[Table] | None:
        """The tables to print one after another, or None when only the vertical layout fits."""
        keys = list(range(self.key))
        rest = [i for i in range(self.key, len(self.columns)) if not self.columns[i].optional]
        full = self._table(range(len(self.columns)))
        if self._fits(console, options, full):
            return [self._sized(console, options, full)]
        if not self.stack:
            return None
        groups: list[list[int]] = []
        for i in rest:
            if groups and self._fits(console, options, self._table(keys + groups[-1] + [i])):
                groups[-1].append(i)
            elif self._fits(console, options, self._table(keys + [i])):
                groups.append([i])
            else:
                return None
        return [self._sized(console, options, self._table(keys + g)) for g in groups] or [self._table(keys)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        tables = self.layouts(console, options)
        if tables is not None:
            for i, table in enumerate(tables):
                if i:
                    yield Text("")
                yield table
            return
        # one block per row; a word wider than the terminal runs past its edge (never cut: see emit)
        title = self.table.get("title")
        if title:
            yield Text.from_markup(title, style="bold")
        headless = not self.table.get("show_header", True)
        for n, row in enumerate(self.rows):
            if n and not headless:
                yield Text("")
            head = "  ".join(_plain(cell) for cell in row[: self.key] if _plain(cell))
            if head:
                yield Text(head, style="" if headless else "bold", no_wrap=True, overflow="ignore")
            if headless:
                rest = [_text(cell) for cell in row[self.key :] if _plain(cell)]
                if rest:
                    yield Prose(Text("    ") + Text("  ").join(rest))
                continue
            for c, cell in zip(self.columns[self.key :], row[self.key :], strict=True):
                if not _plain(cell) or c.optional:
                    continue
                label = Text.from_markup(c.header).plain.replace("\n", " ")
                line = Text("  " + (f"{label}  " if label else "")) + _text(cell)
                if c.wrap:
                    yield Prose(line)
                else:
                    line.no_wrap, line.overflow = True, "ignore"
                    yield line


def pairs(rows: Iterable[Sequence[Any]], *, label_style: str = "", **table: Any) -> Fitted:
    """'label  value' lines, aligned: the label never wraps, the value is prose that wraps under itself."""
    columns = [Col("", style=label_style), Col("", wrap=True)]
    return Fitted(columns, rows, **{"show_header": False, **table})


def _text(cell: Any) -> Text:
    return cell.copy() if isinstance(cell, Text) else Text.from_markup(str(cell))


def _plain(cell: Any) -> str:
    return _text(cell).plain


def _cell_width(cell: Any) -> int:
    return max((cell_len(line) for line in _plain(cell).splitlines()), default=0)


def _word_width(cell: Any) -> int:
    return max((cell_len(word) for word in _plain(cell).split()), default=0)


def console(file: TextIO | None = None) -> Console:
    """The console every text rendering is printed on."""
    return Console(file=file or sys.stdout, highlight=False, soft_wrap=False)


def emit(renderable: RenderableType, file: TextIO | None = None) -> None:
    """Print a rendering. crop=False: a word or command wider than the terminal runs on, the terminal wraps it."""
    console(file).print(renderable, crop=False)
