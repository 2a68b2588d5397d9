"""Names the API is known by: group, kind, finalizer, label, annotation, condition types, and the
patterns and rule messages shared with the CRD (a test proves they are the same strings)."""

from __future__ import annotations

GROUP = "publishing.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "publishingbuilds"
SINGULAR = "publishingbuild"
KIND = "PublishingBuild"

# Present only while EAS work is in flight, so finished resources always delete at once.
FINALIZER = "publishing.dev/eas-work"
# succeeded | failed | cancelled on finished resources: `kubectl get pb -l publishing.dev/result=failed`.
RESULT_LABEL = "publishing.dev/result"
# Any new value on a finished Failed/Cancelled resource starts a fresh attempt budget.
RETRY_ANNOTATION = "publishing.dev/retry"

COND_SUCCEEDED = "Succeeded"
COND_CREDENTIALS = "CredentialsReady"

HISTORY_LIMIT = 10

# Shared with the CRD's patterns (a test proves they are the same strings).
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PROFILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
BUILD_VERSION_PATTERN = r"^[0-9]+(\.[0-9]+){0,2}$"
ANDROID_VERSION_CODE_PATTERN = r"^[0-9]{1,10}$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
GIT_REF_PATTERN = r"^[^\s]+$"
RELATIVE_PATH_PATTERN = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"
URL_PATTERN = r"^https?://[^\s]+$"
SHA256_PATTERN = r"^[a-f0-9]{64}$"
ASC_APP_ID_PATTERN = r"^[0-9]{1,30}$"
TRACK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9:._-]*$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

# Cross-field rule messages, the same text as the CRD's CEL rule messages.
MSG_ONE_SOURCE = "exactly one of source.github or source.archive must be set"
MSG_SIGNING_NEEDS_ARCHIVE = "signing is only allowed with an archive source (source.archive)"
MSG_SUBMIT_IOS_PLATFORM = "submit.ios is only allowed when app.platform is ios"
MSG_SUBMIT_ANDROID_PLATFORM = "submit.android is only allowed when app.platform is android"
MSG_ONE_SUBMIT = "exactly one of submit.ios or submit.android must be set"
MSG_ROLLOUT_IN_PROGRESS = "rollout is only allowed with releaseStatus inProgress"
MSG_ANDROID_VERSION_CODE = "buildVersion must be an integer versionCode when platform is android"
MSG_BACKOFF_ORDER = "backoff.initial must not be longer than backoff.max"
MSG_NO_DOTDOT = "must be a relative path without '..' segments"
MSG_POSITIVE_DURATION = "must be longer than zero"
# Ceilings on the durations a spec may ask for (the CRD's rules and the models).
MAX_BACKOFF = "24h"  # spec.retry.backoff.max: a wait of more than a day between attempts is no retry
MAX_TIMEOUT = "168h"  # spec.timeouts.build / submit: a week, queueing included
MSG_MAX_BACKOFF = f"must be at most {MAX_BACKOFF}"
MSG_MAX_TIMEOUT = f"must be at most {MAX_TIMEOUT}"
