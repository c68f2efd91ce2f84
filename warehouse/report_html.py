"""A self-contained HTML report of the LTV marts, plus PNG charts for Dagster's metadata.

The page must open from disk, be mailed around and survive GA's data: charts are base64 PNGs
drawn with matplotlib's Agg canvas (no pyplot, so no global state between runs), styles are
inline, every value from GA is HTML-escaped, and a Content-Security-Policy forbids scripts and
any fetch, in case a value ever slipped through.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from warehouse.connection import DEFAULT_LOCK_TIMEOUT_SECONDS, reader
from warehouse.extracts import last_loaded_month

logger = logging.getLogger(__name__)

MAX_CURVES = 8  # more lines than this are unreadable; the summary table lists every channel
_SUMMARY_AGES = (1, 3, 6, 12)
_PNG_METADATA = {"Software": None}
_CHART_STYLE = {
    "text.parse_math": False,  # a "$" in a channel name is text, not TeX
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

_CURVES_SQL = """
select property_id,
       dimension_value                                       as channel,
       months_since_acquisition                              as age,
       sum(cumulative_revenue) / sum(acquired_users)         as ltv,
       count(*)                                              as cohorts
  from marts.ltv_monthly
 where dimension = 'channel'
   and acquired_users > 0
 group by all
 order by property_id, channel, age
"""

_HEATMAP_SQL = """
select property_id,
       cohort_month,
       months_since_acquisition                              as age,
       sum(cumulative_revenue) / nullif(sum(acquired_users), 0) as ltv
  from marts.ltv_monthly
 where dimension = 'channel'
 group by all
 order by property_id, cohort_month, age
"""

_SUMMARY_SQL = (
    "select * from marts.ltv_summary order by property_id, dimension, acquired_users desc"
)


@dataclass(frozen=True)
class PropertyCharts:
    property_id: str
    currency: str
    curves_png: bytes
    heatmap_png: bytes
    channels_drawn: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReportResult:
    month: str
    html: Path
    charts: dict[str, tuple[Path, Path]]  # property id -> (curves PNG, heat map PNG)
    summary_rows: int


class NothingToReport(RuntimeError):
    """The marts are empty."""


def build_report(
    db_path: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> ReportResult:
    """Write ``<folder>/<month>/ltv_report.html`` and the PNG charts beside it (0600/0700)."""
    with reader(db_path, lock_timeout=lock_timeout) as con:
        month = last_loaded_month(con)
        if month is None:
            raise NothingToReport("marts.ltv_monthly is empty: nothing to report")
        curves = _fetch(con, _CURVES_SQL)
        heat = _fetch(con, _HEATMAP_SQL)
        summary = _fetch(con, _SUMMARY_SQL)
    charts = [
        _draw_property(property_id, curves, heat, summary)
        for property_id in sorted({str(r["property_id"]) for r in summary})
    ]
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = root / month
    target.mkdir(exist_ok=True, mode=0o700)
    target.chmod(0o700)
    paths: dict[str, tuple[Path, Path]] = {}
    for chart in charts:
        stem = re.sub(r"[^0-9A-Za-z_-]", "_", chart.property_id)
        curves_path = _write_private(target / f"ltv_curves_{stem}.png", chart.curves_png)
        heat_path = _write_private(target / f"ltv_heatmap_{stem}.png", chart.heatmap_png)
        paths[chart.property_id] = (curves_path, heat_path)
    page = render_html(month=month, charts=charts, summary=summary)
    html_path = _write_private(target / "ltv_report.html", page.encode("utf-8"))
    logger.info(
        "wrote LTV report %s: %d properties, %d summary rows", html_path, len(charts), len(summary)
    )
    return ReportResult(month=month, html=html_path, charts=paths, summary_rows=len(summary))


def _fetch(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, object]]:
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _draw_property(
    property_id: str,
    curves: list[dict[str, object]],
    heat: list[dict[str, object]],
    summary: list[dict[str, object]],
) -> PropertyCharts:
    channels = [
        r for r in summary if r["property_id"] == property_id and r["dimension"] == "channel"
    ]
    currency = str(channels[0]["currency_code"]) if channels else ""
    drawn = [str(r["dimension_value"]) for r in channels[:MAX_CURVES]]
    by_channel: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in curves:
        if row["property_id"] == property_id and row["channel"] in drawn:
            by_channel[str(row["channel"])].append((int(row["age"]), float(row["ltv"])))
    cells = [r for r in heat if r["property_id"] == property_id]
    return PropertyCharts(
        property_id=property_id,
        currency=currency,
        curves_png=_curves_png(by_channel, drawn, currency),
        heatmap_png=_heatmap_png(cells, currency),
        channels_drawn=drawn,
    )


def _curves_png(
    by_channel: dict[str, list[tuple[int, float]]], order: Sequence[str], currency: str
) -> bytes:
    with matplotlib.rc_context(_CHART_STYLE):
        fig = Figure(figsize=(10, 5), dpi=100)
        ax = fig.add_subplot()
        for channel in order:
            points = by_channel.get(channel)
            if points:
                ages, values = zip(*points, strict=True)
                ax.plot(ages, values, marker="o", markersize=3, linewidth=2, label=channel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("months since acquisition")
        ax.set_ylabel(f"LTV per acquired user ({currency})" if currency else "LTV per user")
        ax.set_title("LTV by first-user channel, weighted over the cohorts that reached each age")
        ax.grid(True, alpha=0.3)
        if order:
            ax.legend(loc="upper left", fontsize=8, frameon=False)
        return _png(fig)


def _heatmap_png(cells: list[dict[str, object]], currency: str) -> bytes:
    cohorts = sorted({c["cohort_month"] for c in cells})  # type: ignore[type-var]
    max_age = max((int(c["age"]) for c in cells), default=0)  # type: ignore[call-overload]
    index = {cohort: i for i, cohort in enumerate(cohorts)}
    grid = [[float("nan")] * (max_age + 1) for _ in cohorts]
    for c in cells:
        if c["ltv"] is not None:
            grid[index[c["cohort_month"]]][int(c["age"])] = float(c["ltv"])  # type: ignore[call-overload, arg-type]
    with matplotlib.rc_context(_CHART_STYLE):
        fig = Figure(figsize=(10, max(3.0, 0.28 * len(cohorts) + 1.5)), dpi=100)
        ax = fig.add_subplot()
        image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_yticks(range(len(cohorts)), [_month(c) for c in cohorts])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("months since acquisition")
        ax.set_ylabel("cohort (month of first visit)")
        ax.set_title("Cumulative LTV per acquired user, by cohort and age")
        colorbar = fig.colorbar(image, ax=ax)
        colorbar.set_label(f"LTV ({currency})" if currency else "LTV")
        return _png(fig)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata=_PNG_METADATA)
    return buffer.getvalue()


def _month(value: object) -> str:
    return value.strftime("%Y-%m") if isinstance(value, date) else str(value)


def render_html(
    *, month: str, charts: Sequence[PropertyCharts], summary: list[dict[str, object]]
) -> str:
    """The whole page as a string; every interpolated value goes through ``_e``."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [_property_section(chart, summary) for chart in charts]
    return _PAGE.format(
        title=_e(f"Customer lifetime value, data through {month}"),
        generated=_e(generated),
        month=_e(month),
        sections="\n".join(sections) or "<p>No properties.</p>",
    )


def _property_section(chart: PropertyCharts, summary: list[dict[str, object]]) -> str:
    rows = [r for r in summary if r["property_id"] == chart.property_id]
    tables = []
    for dimension in ("channel", "source", "medium", "campaign"):
        subset = [r for r in rows if r["dimension"] == dimension]
        if subset:
            tables.append(f"<h3>By first-user {_e(dimension)}</h3>\n{_summary_table(subset)}")
    return (
        f"<section>\n<h2>Property {_e(chart.property_id)}"
        f"{' (' + _e(chart.currency) + ')' if chart.currency else ''}</h2>\n"
        f"<figure>{_img(chart.curves_png, 'LTV curves by channel')}"
        "<figcaption>LTV after N months = cumulative revenue of the cohorts that reached N "
        "months / their acquired users. Channels: the "
        f"{len(chart.channels_drawn)} largest by acquired users.</figcaption></figure>\n"
        f"<figure>{_img(chart.heatmap_png, 'Cohort LTV heat map')}"
        "<figcaption>Rows: acquisition month; columns: months since acquisition. Blank: "
        "not reached yet.</figcaption></figure>\n" + "\n".join(tables) + "\n</section>"
    )


def _summary_table(rows: Iterable[dict[str, object]]) -> str:
    head = "".join(
        f"<th>{_e(label)}</th>"
        for label in (
            "value",
            "acquired users",
            "cohorts",
            *(f"LTV {age}m (cohorts)" for age in _SUMMARY_AGES),
            "currency",
        )
    )
    body = []
    for r in rows:
        cells = [
            f'<td class="text">{_e(r["dimension_value"])}</td>',
            f"<td>{_e(format(r['acquired_users'], ','))}</td>",
            f"<td>{_e(r['cohorts'])}</td>",
        ]
        for age in _SUMMARY_AGES:
            ltv = r[f"ltv_{age}m"]
            figure = "-" if ltv is None else f"{ltv:,.2f}"
            cells.append(f"<td>{_e(figure)} <small>({_e(r[f'cohorts_{age}m'])})</small></td>")
        cells.append(f'<td class="text">{_e(r["currency_code"])}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>"
    )


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def png_markdown(png: bytes, alt: str) -> str:
    """A markdown image with the PNG inline, for ``MetadataValue.md``."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def _write_private(path: Path, data: bytes) -> Path:
    """Write via a temporary file and rename, so a reader never opens half a report."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; color: #222; margin: 24px auto; max-width: 1100px;
        padding: 0 16px; background: #fff; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 18px; margin-top: 32px; }} h3 {{ font-size: 15px; }}
figure {{ margin: 16px 0; }} figure img {{ width: 100%; max-width: 1000px; display: block; }}
figcaption {{ color: #555; font-size: 12px; }}
table {{ border-collapse: collapse; width: 100%; margin-bottom: 16px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: right;
          vertical-align: top; }}
th {{ background: #f4f4f4; }} th:first-child {{ text-align: left; }}
td.text {{ text-align: left; unicode-bidi: isolate; overflow-wrap: anywhere;
           max-width: 420px; }}
small {{ color: #777; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Generated {generated} from the ga-ltv warehouse. Last loaded month: {month}.
LTV is weighted over the cohorts old enough to have reached each age.</p>
{sections}
</body>
</html>
"""
