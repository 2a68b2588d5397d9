"""EAS states as Expo sends them, grouped the way the lifecycle reads them: one place for every set."""

from __future__ import annotations

# Builds (Expo's BuildStatus).
BUILD_WAITING = frozenset({"NEW", "IN_QUEUE"})
BUILD_RUNNING = frozenset({"IN_PROGRESS"})
BUILD_CANCELLING = frozenset({"PENDING_CANCEL"})
BUILD_TERMINAL = frozenset({"FINISHED", "ERRORED", "CANCELED"})

# Submissions (Expo's SubmissionStatus).
SUBMISSION_WAITING = frozenset({"AWAITING_BUILD", "IN_QUEUE"})
SUBMISSION_RUNNING = frozenset({"IN_PROGRESS"})
SUBMISSION_TERMINAL = frozenset({"FINISHED", "ERRORED", "CANCELED"})
# A submission that is running or delivered: adopt it instead of submitting the build again.
SUBMISSION_DEAD = frozenset({"ERRORED", "CANCELED"})

# EAS build error codes that say the infrastructure failed, not the project: worth another attempt.
# Everything else (compile errors, bad config, bad credentials) fails at once: retrying wastes money.
RETRYABLE_BUILD_ERRORS = frozenset({"UNKNOWN_ERROR", "SERVER_ERROR", "EAS_BUILD_SYSTEM_DEPS_INSTALL_ERROR"})
