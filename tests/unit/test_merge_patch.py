"""The status patch the operator sends is the minimal RFC 7386 merge patch between two statuses."""

from typing import Any

import pytest

from publishing_operator.controller.commit import merge_patch


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 reference algorithm, to prove the patch turns old into new."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({}, {}, {}),
        ({"phase": "Queued"}, {"phase": "Queued"}, {}),
        ({"phase": "Queued"}, {"phase": "Building"}, {"phase": "Building"}),
        (
            {"build": {"id": "b", "queuePosition": 3}},
            {"build": {"id": "b"}},
            {"build": {"queuePosition": None}},
        ),
        ({"build": {"id": "b"}}, {}, {"build": None}),
        (
            {"conditions": [{"a": 1}]},
            {"conditions": [{"a": 1}, {"b": 2}]},
            {"conditions": [{"a": 1}, {"b": 2}]},
        ),
        ({}, {"submission": {"requestKey": "k"}}, {"submission": {"requestKey": "k"}}),
    ],
)
def test_minimal_patch_and_round_trip(
    old: dict[str, Any], new: dict[str, Any], expected: dict[str, Any]
) -> None:
    patch = merge_patch(old, new)
    assert patch == expected
    assert apply_merge_patch(old, patch) == new
