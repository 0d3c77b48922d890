"""Charts drawn on the server as SVG: nothing loaded from elsewhere, nothing run in the browser."""

from __future__ import annotations

import datetime as dt

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 200, 36, 24, 12


def hourly_bars(counts: list[tuple[dt.datetime, int]], *, element_id: str, title: str) -> SafeString:
    """A bar per hour, labelled every third hour (UTC), with the peak on the axis; each bar's count and hour are
    its tooltip and its data attributes."""
    peak = max((n for _, n in counts), default=0)
    scale = max(peak, 1)
    plot_width, plot_height = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_width / max(len(counts), 1)
    bars = []
    for index, (hour, count) in enumerate(counts):
        height = round(plot_height * count / scale, 1)
        x = round(LEFT + index * step + 1, 1)
        bars.append((x, round(TOP + plot_height - height, 1), round(step - 2, 1), height, hour.isoformat(), count))
    # <title> of a bar: "HH:00 UTC: n payments".
    bar_marks = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" data-hour="{}" data-count="{}">'
        "<title>{}: {} payments</title></rect>",
        (
            (x, y, w, h, hour, count, f"{dt.datetime.fromisoformat(hour):%H:00} UTC", count)
            for x, y, w, h, hour, count in bars
        ),
    )
    labels = format_html_join(
        "",
        '<text class="label" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (round(LEFT + index * step + step / 2, 1), HEIGHT - 6, f"{hour:%H}h")
            for index, (hour, _) in enumerate(counts)
            if index % 3 == 0
        ),
    )
    return format_html(
        '<svg id="{}" class="chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        "<title>{}</title>"
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text class="label" x="{}" y="{}" text-anchor="end">{}</text>'
        '<text class="label" x="{}" y="{}" text-anchor="end">0</text>'
        "{}{}</svg>",
        element_id,
        title,
        WIDTH,
        HEIGHT,
        title,
        LEFT,
        TOP + plot_height,
        WIDTH - 8,
        TOP + plot_height,
        LEFT - 4,
        TOP + 8,
        peak,
        LEFT - 4,
        TOP + plot_height,
        bar_marks,
        labels,
    )
