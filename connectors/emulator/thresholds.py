"""When a response says ``subjectToThresholding``, kept deliberately simple.

GA withholds rows with few users when Google signals (or demographics) could identify them, and
flags the report. Its threshold is not published. The emulator flags a report when the property
has ``google_signals`` on, the report has dimensions and a user-count metric, and some row
counts fewer than ``THRESHOLD_USERS`` users. It only flags: no row is withheld.
"""

from __future__ import annotations

from connectors.emulator.dataset import PropertyData
from connectors.emulator.engine import Report
from connectors.emulator.query import ReportQuery

USER_COUNT_METRICS = frozenset({"totalUsers", "activeUsers", "newUsers"})
THRESHOLD_USERS = 50


def subject_to_thresholding(data: PropertyData, query: ReportQuery, report: Report) -> bool:
    if not data.google_signals or not query.dimensions:
        return False
    for index, name in enumerate(query.metrics):
        if name in USER_COUNT_METRICS:
            smallest = report.metric_minimum(index)
            if smallest is not None and smallest < THRESHOLD_USERS:
                return True
    return False
