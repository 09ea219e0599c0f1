"""The queues page's chart as inline SVG: live messages per queue over the
last hour. Drawn here, so the page needs no charting library and no network."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from alsek_ops.dashboard.history import KEEP_S, Sample

WIDTH, HEIGHT, PAD = 760, 220, 36
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


def ago(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def chart(samples: Sequence[Sample]) -> str:
    if len(samples) < 2:
        return '<p class="muted">The chart appears after two samples (one every few seconds).</p>'
    end = samples[-1].at
    # The last hour, or less while the dashboard has not run that long.
    start = max(end - KEEP_S, samples[0].at)
    span = end - start
    queues = sorted({q for s in samples for q in s.live})
    top = max([1, *(n for s in samples for n in s.live.values())])

    def x(at: float) -> float:
        return PAD + (at - start) / span * (WIDTH - 2 * PAD)

    def y(n: int) -> float:
        return HEIGHT - PAD - n / top * (HEIGHT - 2 * PAD)

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="live messages per queue, last hour">',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
             f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{top}</text>',
             f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end">0</text>',
             f'<text x="{PAD}" y="{HEIGHT - 12}">-{ago(span)}</text>',
             f'<text x="{WIDTH - PAD}" y="{HEIGHT - 12}" text-anchor="end">now</text>']
    for i, queue in enumerate(queues):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{x(s.at):.1f},{y(s.live.get(queue, 0)):.1f}" for s in samples if s.at >= start)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                     f'<title>{escape(queue)}</title></polyline>')
    parts.append("</svg>")
    legend = "".join(f'<span style="color:{COLOURS[i % len(COLOURS)]}">&#9632; {escape(q)}</span> '
                     for i, q in enumerate(queues))
    return "".join(parts) + f'<p class="legend">{legend}</p>'

