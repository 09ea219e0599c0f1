from __future__ import annotations

from alsek_core.status import (
    StatusTracker,
    StatusTrackerIntegrityScanner,
    StatusTrackerIntegryScanner,
    TaskStatus,
)

__all__ = [
    "StatusTracker",
    "StatusTrackerIntegrityScanner",
    "StatusTrackerIntegryScanner",
    "TaskStatus",
]
