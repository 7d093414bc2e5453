"""The console's dashboard: which series it draws, summed over sites, and each as a server-rendered SVG chart.

A series is one entry of :data:`METRICS`: a counter of the stats (``gate/schemas.Counters``) or a
share of one counter in another. Adding a counter to the dashboard is one line here; a counter the
stats do not have yet reads 0 (so the list may name the funnel before every process counts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from supportgate.gate.schemas import Stats

__all__ = [
    "FUNNEL",
    "METRICS",
    "PERIODS",
    "Bar",
    "Chart",
    "Drawing",
    "FunnelStep",
    "Metric",
    "Point",
    "build_charts",
    "build_funnel",
    "draw",
]

PERIODS: Final = (7, 30, 90)
"""The ranges, in days up to today, the dashboard offers."""


@dataclass(frozen=True)
class Metric:
    """One dashboard series: ``field`` per day, or with ``of`` the share ``field / of`` in percent."""

    field: str
    """The counter (a field of the stats' days and totals)."""
    title: str
    """Its name on the page."""
    description: str
    """One sentence under the title: what is counted."""
    of: str | None = None
    """For a share: the counter it is a share of."""

    @property
    def key(self) -> str:
        """A name unique among :data:`METRICS` (a counter may also be drawn as a share): for the page's ids."""
        return f"{self.field}-of-{self.of}" if self.of else self.field


METRICS: Final[tuple[Metric, ...]] = (
    Metric("views", "Page views", "Decisions the gate answered."),
    Metric("blocked", "Share blocked", "Views whose detection said an ad blocker was on.", of="views"),
    Metric("clear", "Share clear", "Views whose detection found no ad blocker.", of="views"),
    Metric("inconclusive", "Share inconclusive", "Views whose detection could not tell.", of="views"),
    Metric("walls", "Walls", "Views answered with the wall."),
    Metric("nags", "Nags", "Views answered with the dismissible nag."),
    Metric("supporter_unlocks", "Supporter unlocks", "Views allowed for a supporter's pass."),
    Metric("metered_allows", "Metered views", "Views allowed as one of the free views of the meter."),
    Metric("false_positive_reports", "False-positive reports", "Readers who said they block no ads."),
    Metric("rechecks", "Check again pressed", 'Times a reader pressed "check again" on the wall or a nag.'),
    Metric("allowlisted", "Allowlisted", "Re-checks that came back clear: the reader allowlisted the site."),
    Metric("support_clicks", "Become a supporter clicked", 'Times a reader followed "become a supporter".'),
    Metric("signin_clicks", "Sign in clicked", 'Times a reader pressed "sign in with the extension".'),
    Metric("nag_dismissals", "Nags dismissed", "Nags a reader closed."),
    Metric("nag_dismissals", "Share of nags dismissed", "Nags a reader closed, of the nags shown.", of="nags"),
)
"""Every series the dashboard draws, in order."""


@dataclass(frozen=True)
class Point:
    """One day of a series."""

    day: date
    value: float


@dataclass(frozen=True)
class Chart:
    """One series over the range: its points and its total (a share: over the whole range)."""

    metric: Metric
    points: list[Point]
    total: float

    @property
    def unit(self) -> str:
        """``%`` for a share, else nothing."""
        return "%" if self.metric.of else ""

    def show(self, value: float) -> str:
        """A value as the table and the chart's labels write it."""
        return f"{value:.1f}%" if self.metric.of else f"{int(value):,}"


def _count(counters: object, name: str) -> int:
    value = getattr(counters, name, 0)
    return value if isinstance(value, int) else 0


def _share(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def build_charts(reads: Sequence[Stats], metrics: Sequence[Metric] = METRICS) -> list[Chart]:
    """Each metric over the days of ``reads`` (the same range, one per site), summed over the sites."""
    if not reads:
        return []
    days = [day.date for day in reads[0].days]
    per_day: list[dict[str, int]] = [{} for _ in days]
    totals: dict[str, int] = {}
    names = {metric.field for metric in metrics} | {metric.of for metric in metrics if metric.of}
    for stats in reads:
        for index, day in enumerate(stats.days):
            for name in names:
                per_day[index][name] = per_day[index].get(name, 0) + _count(day, name)
        for name in names:
            totals[name] = totals.get(name, 0) + _count(stats.totals, name)
    charts = []
    for metric in metrics:
        if metric.of:
            points = [
                Point(day, _share(counts.get(metric.field, 0), counts.get(metric.of, 0)))
                for day, counts in zip(days, per_day, strict=True)
            ]
            total = _share(totals.get(metric.field, 0), totals.get(metric.of, 0))
        else:
            points = [Point(day, counts.get(metric.field, 0)) for day, counts in zip(days, per_day, strict=True)]
            total = totals.get(metric.field, 0)
        charts.append(Chart(metric, points, total))
    return charts


FUNNEL: Final[tuple[tuple[str, str], ...]] = (
    ("walls", "Wall shown"),
    ("rechecks", "Check again pressed"),
    ("allowlisted", "Allowlisted"),
    ("support_clicks", "Become a supporter clicked"),
    ("signin_clicks", "Sign in clicked"),
)
"""The funnel after a wall, in order: each step's counter and its name on the page."""


@dataclass(frozen=True)
class FunnelStep:
    """One step of the funnel over the range: its count and the share of walls it keeps."""

    field: str
    title: str
    count: int
    share: float
    """``count`` in percent of the walls shown (0 without walls)."""


def build_funnel(totals: object) -> list[FunnelStep]:
    """The steps of :data:`FUNNEL` from one set of counters (a site's or all sites' totals)."""
    walls = _count(totals, "walls")
    return [
        FunnelStep(field, title, _count(totals, field), _share(_count(totals, field), walls)) for field, title in FUNNEL
    ]


_WIDTH: Final = 600
_HEIGHT: Final = 160
_LEFT: Final = 64
_BOTTOM: Final = 20
_TOP: Final = 10


@dataclass(frozen=True)
class Bar:
    """One day's bar, in the chart's own units."""

    x: float
    y: float
    width: float
    height: float
    label: str
    """The day and its value, for the bar's own ``<title>``."""


@dataclass(frozen=True)
class Drawing:
    """What ``templates/console/_chart.html`` draws: an inline SVG bar chart, no script, no inline style."""

    width: int
    height: int
    left: int
    top: int
    base: float
    """Where the bars stand (the x axis)."""
    top_label: str
    """The value at the top of the scale."""
    first: str
    last: str
    bars: list[Bar]


def draw(chart: Chart) -> Drawing:
    """``chart`` laid out as bars: a share against 100 %, a count against its largest day."""
    points = chart.points
    top = 100.0 if chart.metric.of else max((point.value for point in points), default=0.0)
    scale = top if top > 0 else 1.0
    plot_width = _WIDTH - _LEFT - 4
    plot_height = _HEIGHT - _TOP - _BOTTOM
    step = plot_width / max(len(points), 1)
    width = max(step * 0.8, 1.0)
    bars = []
    for index, point in enumerate(points):
        height = plot_height * point.value / scale
        bars.append(
            Bar(
                x=round(_LEFT + index * step, 1),
                y=round(_TOP + plot_height - height, 1),
                width=round(width, 1),
                height=round(height, 1),
                label=f"{point.day.isoformat()}: {chart.show(point.value)}",
            )
        )
    return Drawing(
        width=_WIDTH,
        height=_HEIGHT,
        left=_LEFT,
        top=_TOP,
        base=_TOP + plot_height,
        top_label=chart.show(top),
        first=points[0].day.isoformat() if points else "",
        last=points[-1].day.isoformat() if points else "",
        bars=bars,
    )
