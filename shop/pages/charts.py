"""The dashboard's chart, drawn on the server as inline SVG: no chart library, no script, no CDN."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from queue_core import MinuteBucket

WIDTH = 600
HEIGHT = 160
MARGIN_LEFT = 44
MARGIN_RIGHT = 44
MARGIN_TOP = 10
MARGIN_BOTTOM = 22


def throughput_chart(minutes: Sequence[MinuteBucket]) -> Markup:
    """Bars: tasks finished per minute (succeeded, and unsuccessful stacked on top, in red).

    Line: the median pickup latency of each minute, on its own scale at the right.
    """
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    most = max([m.succeeded + m.unsuccessful for m in minutes] + [1])
    slowest = max([m.p50_pickup_ms or 0.0 for m in minutes] + [1.0])
    slot = plot_width / max(len(minutes), 1)
    bottom = MARGIN_TOP + plot_height
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'xmlns="http://www.w3.org/2000/svg">',
        "<title>Tasks finished per minute, and median pickup latency</title>",
        f'<line x1="{MARGIN_LEFT}" y1="{bottom}" x2="{WIDTH - MARGIN_RIGHT}" y2="{bottom}" class="axis"/>',
        f'<text x="{MARGIN_LEFT - 4}" y="{MARGIN_TOP + 8}" text-anchor="end" class="tick">{most}</text>',
        f'<text x="{MARGIN_LEFT - 4}" y="{bottom}" text-anchor="end" class="tick">0</text>',
        f'<text x="{WIDTH - MARGIN_RIGHT + 4}" y="{MARGIN_TOP + 8}" class="tick latency">'
        f"{_milliseconds(slowest)}</text>",
    ]
    points: list[str] = []
    for n, minute in enumerate(minutes):
        x = MARGIN_LEFT + n * slot
        ok_height = plot_height * minute.succeeded / most
        bad_height = plot_height * minute.unsuccessful / most
        label = escape(
            f"{minute.start:%H:%M}: {minute.succeeded} succeeded, {minute.unsuccessful} unsuccessful, "
            f"median pickup {_milliseconds(minute.p50_pickup_ms)}"
        )
        parts.append(f"<g><title>{label}</title>")
        parts.append(
            f'<rect class="bar ok" x="{x + 2:.1f}" y="{bottom - ok_height:.1f}" '
            f'width="{slot - 4:.1f}" height="{ok_height:.1f}"/>'
        )
        if minute.unsuccessful:
            parts.append(
                f'<rect class="bar bad" x="{x + 2:.1f}" y="{bottom - ok_height - bad_height:.1f}" '
                f'width="{slot - 4:.1f}" height="{bad_height:.1f}"/>'
            )
        parts.append("</g>")
        if n % 2 == 0 or len(minutes) <= 6:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="tick">'
                f"{minute.start:%H:%M}</text>"
            )
        if minute.p50_pickup_ms is not None:
            y = bottom - plot_height * minute.p50_pickup_ms / slowest
            points.append(f"{x + slot / 2:.1f},{y:.1f}")
    if len(points) > 1:
        parts.append(f'<polyline class="latency" points="{" ".join(points)}"/>')
    for point in points:
        cx, cy = point.split(",")
        parts.append(f'<circle class="latency" cx="{cx}" cy="{cy}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _milliseconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms"
