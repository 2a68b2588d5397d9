"""The closed value sets of the API: phases, platforms, workflows, condition statuses, results."""

from __future__ import annotations

from enum import StrEnum

# ---------------------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------------------


class Phase(StrEnum):
    """The one-word summary in `status.phase` (conditions carry the detail)."""

    PENDING = "Pending"
    QUEUED = "Queued"
    BUILDING = "Building"
    SUBMITTING = "Submitting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


FINISHED_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
# EAS work exists: polled by timers, guarded by the finalizer, cancelled on deletion.
IN_FLIGHT_PHASES = frozenset({Phase.BUILDING, Phase.SUBMITTING})


class Platform(StrEnum):
    IOS = "ios"
    ANDROID = "android"


class Workflow(StrEnum):
    """EAS workflow of an archive project: managed (Expo prebuild) or generic (native folders)."""

    MANAGED = "managed"
    GENERIC = "generic"


class ReleaseStatus(StrEnum):
    """Google Play release status of the submitted track release."""

    COMPLETED = "completed"
    DRAFT = "draft"
    HALTED = "halted"
    IN_PROGRESS = "inProgress"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class AttemptResult(StrEnum):
    """How one attempt ended, in `status.history[].result`."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
