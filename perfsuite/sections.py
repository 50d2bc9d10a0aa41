"""Report sections: what a test type adds to a report, as data that every renderer draws.

A test type turns its typed figures into :class:`Section` values (``TestType.sections``); the
terminal report (``perfsuite/report.py``) and the HTML report (``perfsuite/report_html.py``) both
draw the same sections, so the HTML shows everything the terminal shows. Sections are drawn from
the figures each time a report is written (never stored as text).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Tone = Literal["", "ok", "warn", "bad"]
"""How a line reads: neutral, fine, a warning, a problem (HTML colours it; the terminal prefixes
problems with ``!``)."""


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of text cells under headers; columns in ``left`` align left, the rest right."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    left: tuple[int, ...] = (0,)


@dataclass(frozen=True, slots=True)
class Line:
    """One line of text with its tone."""

    text: str
    tone: Tone = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A titled block: lines before the table, the table, lines after it."""

    title: str
    lines: tuple[Line, ...] = ()
    table: Table | None = None
    after: tuple[Line, ...] = ()
    key: str = ""
    """Stable id (``latency``, ``backlog``...) for tests and HTML anchors."""
    extra: dict[str, str] = field(default_factory=dict)


def lines(*texts: str | Line | None) -> tuple[Line, ...]:
    """Lines from texts (``None`` skipped): ``lines("a", Line("b", "warn"))``."""
    return tuple(text if isinstance(text, Line) else Line(text) for text in texts if text is not None)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], left: Iterable[int] = (0,)) -> Table:
    """A :class:`Table` from any sequences."""
    return Table(tuple(headers), tuple(tuple(str(cell) for cell in row) for row in rows), tuple(left))


def ms(value: float | None, digits: int = 1) -> str:
    """Milliseconds for a table cell: ``12.3``; ``-`` when missing."""
    return "-" if value is None else f"{float(value):,.{digits}f}"


def plain_table(tab: Table) -> list[str]:
    """A :class:`Table` as aligned plain-text lines (trailing blanks cut)."""
    widths = [max(len(cell) for cell in column) for column in zip(tab.headers, *tab.rows, strict=False)]
    left = set(tab.left)
    pattern = "  ".join(f"{{:<{w}}}" if i in left else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [pattern.format(*tab.headers), pattern.format(*("-" * w for w in widths))]
    out += [pattern.format(*row) for row in tab.rows]
    return [text.rstrip() for text in out]


__all__ = ["Line", "Section", "Table", "Tone", "lines", "ms", "plain_table", "table"]
