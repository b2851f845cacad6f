"""A bar chart of counts per week, drawn with block characters, with the weeks' dates
under the bars and the scale on the left. Its width follows the screen's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from cartes.tui import formats

_EIGHTHS = " ▁▂▃▄▅▆▇█"


class WeekChart(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"week-chart--bar", "week-chart--axis"}
    DEFAULT_CSS = """
    WeekChart { height: 10; width: 1fr; }
    WeekChart > .week-chart--bar { color: $accent; }
    WeekChart > .week-chart--axis { color: $text-muted; }
    """
    BAR_ROWS = 8

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.week_starts: tuple[dt.date, ...] = ()
        self.values: tuple[int, ...] = ()

    def show(self, week_starts: Sequence[dt.date], values: Sequence[int]) -> None:
        self.week_starts = tuple(week_starts)
        self.values = tuple(values)
        self.refresh()

    def render(self) -> Text:
        if not self.values:
            return Text("")
        bar_style = self.get_component_rich_style("week-chart--bar", partial=True)
        axis_style = self.get_component_rich_style("week-chart--axis", partial=True)
        top = max(self.values)
        scale = formats.number(top)
        axis = max(len(scale), 1) + 1
        weeks = len(self.values)
        column = max((self.content_size.width - axis) // weeks, 1)
        bar = max(column - 1, 1) if column > 1 else 1
        text = Text(no_wrap=True, overflow="crop")
        for row in range(self.BAR_ROWS, 0, -1):
            label = scale if row == self.BAR_ROWS else ("0" if row == 1 else "")
            text.append(label.rjust(axis - 1) + "│", axis_style)
            for value in self.values:
                eighths = round(value * self.BAR_ROWS * 8 / top) if top else 0
                if value and not eighths:
                    eighths = 1  # a week with something is never drawn empty
                filled = min(max(eighths - (row - 1) * 8, 0), 8)
                text.append(_EIGHTHS[filled] * bar, bar_style)
                text.append(" " * (column - bar))
            text.append("\n")
        # The dates of some weeks, under their bars, as many as fit without touching.
        labels = [" "] * (axis + column * weeks + 6)
        every = max(-(-6 // column), 1)
        for week in range(0, weeks, every):
            start = axis + week * column
            for offset, character in enumerate(f"{self.week_starts[week]:%d/%m}"):
                labels[start + offset] = character
        text.append("".join(labels).rstrip(), axis_style)
        return text
