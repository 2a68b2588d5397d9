"""Every GraphQL document the client can send parses and validates against Expo's real schema."""

from __future__ import annotations

import pytest
from graphql import OperationDefinitionNode, parse, validate

from publishing_operator.expo import operations
from publishing_operator.expo.operations import Operation
from tests.contract.expo_schema import expo_schema

BATCH_SIZES = range(1, operations.MAX_BUILDS_PER_REQUEST + 1)


def _all_operations() -> list[Operation]:
    # Collected from the module, so a new document is covered even if OPERATIONS forgets it; and
    # the batched build poll at every size it can be sent in.
    fixed = [value for value in vars(operations).values() if isinstance(value, Operation)]
    return fixed + [operations.builds_by_id(n) for n in BATCH_SIZES]


def test_registry_lists_every_operation() -> None:
    assert {op.name for op in _all_operations()} == set(operations.OPERATIONS)


def test_a_batch_is_one_aliased_build_query_per_build() -> None:
    op = operations.builds_by_id(3)
    assert op.idempotent and op.partial
    assert "b2: builds { byId(buildId: $b2) { ...BuildFields } }" in op.document
    with pytest.raises(ValueError, match=r"1\.\.50"):
        operations.builds_by_id(operations.MAX_BUILDS_PER_REQUEST + 1)


@pytest.mark.parametrize("op", _all_operations(), ids=lambda op: op.name)
def test_document_validates_against_expo_schema(op: Operation) -> None:
    document = parse(op.document)
    errors = validate(expo_schema(), document)
    assert not errors, "\n".join(str(error) for error in errors)
    definitions = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(definitions) == 1
    assert definitions[0].name is not None
    assert definitions[0].name.value == op.name


@pytest.mark.parametrize("op", _all_operations(), ids=lambda op: op.name)
def test_creates_are_not_retried(op: Operation) -> None:
    # Expo has no idempotency key: a create retried blindly can start two paid builds.
    if op.name.startswith("Create") and op.name != "CreateUploadSession":
        assert not op.idempotent
