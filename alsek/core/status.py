from __future__ import annotations

from alsek_core.status import StatusTracker, StatusTrackerIntegrityScanner, TaskStatus

#: The name (and spelling) Alsek users import.
StatusTrackerIntegryScanner = StatusTrackerIntegrityScanner

__all__ = [
    "StatusTracker",
    "StatusTrackerIntegrityScanner",
    "StatusTrackerIntegryScanner",
    "TaskStatus",
]
