"""Terminal tables that fit 100 columns: a few metric columns by default (``--wide`` or
``--metrics`` for more), model names never cut, long run names replaced by short labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath

from rich.console import Console
from rich.table import Table

__all__ = [
    "WIDTH",
    "choose_columns",
    "metric_columns",
    "metrics_table",
    "print_table",
    "run_labels",
]

WIDTH = 100
"""Default table width: what a newcomer's terminal shows without wrapping."""

_VALUE = 6  # "0.1234"
_CELL = 3  # padding and the border of one column


def _cell_width(header: str, values: Sequence[str] = ()) -> int:
    return max([len(header), *(len(v) for v in values), 1]) + _CELL


def metric_columns(results: Mapping) -> tuple[list[str], list[str]]:
    """``(default, all)`` metric columns of a run's ``results.json``: by default the accuracy
    metrics at one cut-off (10 when there, else the smallest) and coverage there; all: every
    accuracy metric at every cut-off, then the beyond-accuracy ones present (by cut-off)."""
    ks = sorted(results.get("ks") or [10])
    metrics = list(results.get("metrics") or [])
    present = {name for model in results.get("models", {}).values() for name in model.get("summary", {})}
    accuracy = [f"{m}@{k}" for m in metrics for k in ks if f"{m}@{k}" in present]

    def cut_off(name: str) -> tuple[int, str]:
        head, _, k = name.partition("@")
        return (int(k) if k.isdigit() else 0, head)

    every = accuracy + sorted(present - set(accuracy), key=cut_off)
    k = 10 if 10 in ks else ks[0]
    default = [c for c in [f"{m}@{k}" for m in metrics] + [f"coverage@{k}"] if c in present]
    return default, every


def choose_columns(
    names: Sequence[str],
    preferred: Sequence[str],
    *,
    width: int | None = WIDTH,
    fixed: Sequence[str] = (),
) -> list[str]:
    """The longest prefix of ``preferred`` that fits ``width`` next to a model column holding
    ``names`` uncut and the ``fixed`` extra columns (``width=None``: all of them)."""
    if width is None:
        return list(preferred)
    used = 1 + _cell_width("model", names) + sum(_cell_width(f, ["0000.0"]) for f in fixed)
    chosen: list[str] = []
    for column in preferred:
        cost = _cell_width(column, ["0.0000"])
        if chosen and used + cost > width:
            break
        chosen.append(column)
        used += cost
    return chosen


def metrics_table(
    title: str,
    rows: Mapping[str, Mapping[str, float]],
    columns: Sequence[str],
    *,
    extra: Mapping[str, Mapping[str, str]] | None = None,
    caption: str | None = None,
) -> Table:
    """Model name (never cut) and one right-aligned column per metric (4 decimals); ``extra`` adds
    text columns (e.g. ``{"train s": {model: "1.2"}}``) after the metrics."""
    table = Table(title=title, caption=caption, caption_justify="left")
    width = max([len("model"), *(len(n) for n in rows)])
    table.add_column("model", no_wrap=True, min_width=width)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for column in extra or {}:
        table.add_column(column, justify="right", no_wrap=True)
    for name, summary in rows.items():
        values = [f"{summary[c]:.4f}" if c in summary else "-" for c in columns]
        values += [(extra or {})[column].get(name, "") for column in extra or {}]
        table.add_row(name, *values)
    return table


def hidden_caption(shown: Sequence[str], every: Sequence[str]) -> str | None:
    """A one-line note on the columns left out (``None`` when none is)."""
    hidden = [c for c in every if c not in shown]
    if not hidden:
        return None
    return (
        f"{len(hidden)} more metric(s) ({', '.join(hidden[:4])}{', ...' if len(hidden) > 4 else ''}): --wide"
    )


def print_table(table: Table, *, wide: bool = False, console: Console | None = None) -> None:
    """Print ``table``; ``wide`` widens the console so that nothing is cut (lines may exceed the
    terminal)."""
    console = console or Console()
    if wide:
        measured = Console(width=100_000).measure(table).maximum
        console = Console(width=max(console.width, measured), file=console.file)
    console.print(table)


def run_labels(runs: Sequence[str | PurePath]) -> dict[str, str]:
    """Short labels ``A``, ``B``, ... for run folders (their names are long timestamps), in order."""
    labels = {}
    for index, run in enumerate(runs):
        label = ""
        number = index
        while True:
            label = chr(ord("A") + number % 26) + label
            number = number // 26 - 1
            if number < 0:
                break
        labels[PurePath(run).name] = label
    return labels
