"""The load test's chart: latency percentiles (p50, p95, p99) against throughput, one point per step, as SVG
written by hand (no plotting library to install)."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, MARGIN = 720, 420, 60
SERIES = ((0.50, "p50", "#1f77b4"), (0.95, "p95", "#ff7f0e"), (0.99, "p99", "#d62728"))


def _ticks(top: float, count: int = 5) -> list[float]:
    return [top * index / count for index in range(count + 1)]


def chart_svg(steps) -> str:
    """`steps`: objects with throughput, clients and percentile(fraction) in ms."""
    x_top = max((step.throughput for step in steps), default=1.0) * 1.1 or 1.0
    y_top = max((step.percentile(0.99) for step in steps), default=1.0) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def x(value: float) -> float:
        return MARGIN + plot_w * value / x_top

    def y(value: float) -> float:
        return HEIGHT - MARGIN - plot_h * value / y_top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">latency against throughput '
        "(make loadtest)</text>",
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="black"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">requests/s</text>',
        f'<text x="15" y="{HEIGHT / 2}" transform="rotate(-90 15 {HEIGHT / 2})" text-anchor="middle">latency (ms)'
        "</text>",
    ]
    for tick in _ticks(x_top):
        parts.append(f'<text x="{x(tick):.1f}" y="{HEIGHT - MARGIN + 15}" text-anchor="middle">{tick:,.0f}</text>')
    for tick in _ticks(y_top):
        parts.append(f'<text x="{MARGIN - 5}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:,.0f}</text>')
    for index, (fraction, label, colour) in enumerate(SERIES):
        points = " ".join(f"{x(step.throughput):.1f},{y(step.percentile(fraction)):.1f}" for step in steps)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for step in steps:
            cx, cy = x(step.throughput), y(step.percentile(fraction))
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"/>')
            if fraction == 0.99:
                clients = f"{step.clients} client{'' if step.clients == 1 else 's'}"
                parts.append(f'<text x="{cx + 5:.1f}" y="{cy - 5:.1f}">{clients}</text>')
        legend_y = MARGIN + 15 * index
        parts.append(f'<rect x="{MARGIN + 10}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{MARGIN + 25}" y="{legend_y}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
