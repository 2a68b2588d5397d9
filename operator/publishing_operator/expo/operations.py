"""Every GraphQL document the client sends to Expo, one `Operation` each.

The contract test (tests/contract) validates everything in `OPERATIONS` against Expo's published
schema, so a new operation is covered as soon as it is added here. Shapes follow eas-cli's own
documents (API.md sections 2-5); `idempotent` says whether the client may retry it on a transient
failure (creates are never retried blindly: there is no idempotency key on Expo's side).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    name: str  # the GraphQL operationName, also the label in logs and metrics
    document: str
    idempotent: bool
    # Made of independent aliased fields (a batch): an error naming one field fails only that one.
    partial: bool = False


BUILD_FIELDS = """
fragment BuildFields on Build {
  id
  status
  platform
  buildProfile
  message
  gitRef
  gitCommitHash
  queuePosition
  estimatedWaitTimeLeftSeconds
  createdAt
  updatedAt
  completedAt
  artifacts { buildUrl applicationArchiveUrl }
  error { errorCode message }
  app { id slug ownerAccount { id name } }
  initiatingActor { id }
}
"""

SUBMISSION_FIELDS = """
fragment SubmissionFields on Submission {
  id
  status
  platform
  createdAt
  updatedAt
  completedAt
  error { errorCode message }
  submittedBuild { id }
  app { id slug ownerAccount { id name } }
}
"""

ME_ACTOR = Operation(
    "MeActor",
    """
query MeActor {
  meActor {
    __typename
    id
    displayName
    accounts { id name }
  }
}
""",
    idempotent=True,
)

CREATE_GITHUB_BUILD = Operation(
    "CreateGitHubBuild",
    """
mutation CreateGitHubBuild($buildInput: GitHubBuildInput!) {
  githubApp {
    createGitHubBuild(buildInput: $buildInput) { id state }
  }
}
""",
    idempotent=False,
)

BACKGROUND_JOB_RECEIPT = Operation(
    "BackgroundJobReceiptById",
    """
query BackgroundJobReceiptById($id: ID!) {
  backgroundJobReceipt {
    byId(id: $id) { id state tries willRetry resultId resultType errorCode errorMessage }
  }
}
""",
    idempotent=True,
)

UPDATE_BUILD_METADATA = Operation(
    "UpdateBuildMetadata",
    """
mutation UpdateBuildMetadata($buildId: ID!, $metadata: BuildMetadataInput!) {
  build {
    updateBuildMetadata(buildId: $buildId, metadata: $metadata) { ...BuildFields }
  }
}
"""
    + BUILD_FIELDS,
    idempotent=True,  # sets the same values again
)

CREATE_UPLOAD_SESSION = Operation(
    "CreateUploadSession",
    """
mutation CreateUploadSession($type: UploadSessionType!, $filename: String) {
  uploadSession {
    createUploadSession(type: $type, filename: $filename)
  }
}
""",
    idempotent=True,  # a repeated call only leaves an unused signed URL behind
)

CREATE_IOS_BUILD = Operation(
    "CreateIosBuild",
    """
mutation CreateIosBuild(
  $appId: ID!
  $job: IosJobInput!
  $metadata: BuildMetadataInput
  $buildParams: BuildParamsInput
) {
  build {
    createIosBuild(appId: $appId, job: $job, metadata: $metadata, buildParams: $buildParams) {
      build { ...BuildFields }
      deprecationInfo { type message }
    }
  }
}
"""
    + BUILD_FIELDS,
    idempotent=False,
)

CREATE_ANDROID_BUILD = Operation(
    "CreateAndroidBuild",
    """
mutation CreateAndroidBuild(
  $appId: ID!
  $job: AndroidJobInput!
  $metadata: BuildMetadataInput
  $buildParams: BuildParamsInput
) {
  build {
    createAndroidBuild(appId: $appId, job: $job, metadata: $metadata, buildParams: $buildParams) {
      build { ...BuildFields }
      deprecationInfo { type message }
    }
  }
}
"""
    + BUILD_FIELDS,
    idempotent=False,
)

BUILD_BY_ID = Operation(
    "BuildById",
    """
query BuildById($buildId: ID!) {
  builds {
    byId(buildId: $buildId) { ...BuildFields }
  }
}
"""
    + BUILD_FIELDS,
    idempotent=True,
)

CANCEL_BUILD = Operation(
    "CancelBuild",
    """
mutation CancelBuild($buildId: ID!) {
  build {
    cancelBuild(buildId: $buildId) { ...BuildFields }
  }
}
"""
    + BUILD_FIELDS,
    idempotent=True,  # cancelling a cancelled build changes nothing
)

MAX_BUILDS_PER_REQUEST = 50  # a batch of builds polled in one request


@functools.cache
def builds_by_id(count: int) -> Operation:
    """`count` builds in one request: `b0: builds { byId(buildId: $b0) }`, `b1: ...` (coalesced polling)."""
    if not 1 <= count <= MAX_BUILDS_PER_REQUEST:
        raise ValueError(f"a batch holds 1..{MAX_BUILDS_PER_REQUEST} builds")
    params = ", ".join(f"$b{i}: ID!" for i in range(count))
    fields = "\n".join(
        f"  b{i}: builds {{ byId(buildId: $b{i}) {{ ...BuildFields }} }}" for i in range(count)
    )
    return Operation(
        "BuildsById",
        f"query BuildsById({params}) {{\n{fields}\n}}\n" + BUILD_FIELDS,
        idempotent=True,
        partial=True,
    )


APP_BUILDS = Operation(
    "AppBuilds",
    """
query AppBuilds($appId: String!, $offset: Int!, $limit: Int!, $filter: BuildFilter) {
  app {
    byId(appId: $appId) {
      id
      builds(offset: $offset, limit: $limit, filter: $filter) { ...BuildFields }
    }
  }
}
"""
    + BUILD_FIELDS,
    idempotent=True,
)

BUILD_SUBMISSIONS = Operation(
    "BuildSubmissions",
    """
query BuildSubmissions($buildId: ID!) {
  builds {
    byId(buildId: $buildId) {
      id
      submissions { ...SubmissionFields }
    }
  }
}
"""
    + SUBMISSION_FIELDS,
    idempotent=True,
)

CREATE_IOS_SUBMISSION = Operation(
    "CreateIosSubmission",
    """
mutation CreateIosSubmission($input: CreateIosSubmissionInput!) {
  submission {
    createIosSubmission(input: $input) {
      submission { ...SubmissionFields }
    }
  }
}
"""
    + SUBMISSION_FIELDS,
    idempotent=False,
)

CREATE_ANDROID_SUBMISSION = Operation(
    "CreateAndroidSubmission",
    """
mutation CreateAndroidSubmission($input: CreateAndroidSubmissionInput!) {
  submission {
    createAndroidSubmission(input: $input) {
      submission { ...SubmissionFields }
    }
  }
}
"""
    + SUBMISSION_FIELDS,
    idempotent=False,
)

SUBMISSION_BY_ID = Operation(
    "SubmissionById",
    """
query SubmissionById($submissionId: ID!) {
  submissions {
    byId(submissionId: $submissionId) { ...SubmissionFields }
  }
}
"""
    + SUBMISSION_FIELDS,
    idempotent=True,
)

CANCEL_SUBMISSION = Operation(
    "CancelSubmission",
    """
mutation CancelSubmission($submissionId: ID!) {
  submission {
    cancelSubmission(submissionId: $submissionId) { ...SubmissionFields }
  }
}
"""
    + SUBMISSION_FIELDS,
    idempotent=True,
)

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        ME_ACTOR,
        builds_by_id(3),  # every batch size has this shape (the contract test checks them all)
        CREATE_GITHUB_BUILD,
        BACKGROUND_JOB_RECEIPT,
        UPDATE_BUILD_METADATA,
        CREATE_UPLOAD_SESSION,
        CREATE_IOS_BUILD,
        CREATE_ANDROID_BUILD,
        BUILD_BY_ID,
        CANCEL_BUILD,
        APP_BUILDS,
        BUILD_SUBMISSIONS,
        CREATE_IOS_SUBMISSION,
        CREATE_ANDROID_SUBMISSION,
        SUBMISSION_BY_ID,
        CANCEL_SUBMISSION,
    )
}
