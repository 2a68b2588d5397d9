"""Every CRD rule case of the unit tests (tests/unit/test_crd_rules.py), on both API servers:
the same accept or reject, with the same status, reason, causes (field and message) and message;
an accepted object comes back the same (defaults included)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.differential.normalize import assert_same, normalize, status_fields
from tests.differential.pair import Pair
from tests.fixtures.kube import Kube
from tests.unit.test_crd_rules import CREATE_CASES, UPDATE_CASES, Case, obj

CASES = [(f"c{index}", case) for index, case in enumerate(CREATE_CASES)] + [
    (f"u{index}", case) for index, case in enumerate(UPDATE_CASES)
]


def manifest(kube: Kube, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = obj(spec)
    body["metadata"] = {"name": name, "namespace": kube.namespace}
    return body


async def create_or_update(kube: Kube, name: str, case: Case) -> tuple[int, Any]:
    collection = kube.path("publishingbuilds")
    if case.old is None:
        return await kube.request("POST", collection, manifest(kube, name, case.new()))
    code, created = await kube.request("POST", collection, manifest(kube, name, case.old()))
    assert code == 201, created
    replaced = {**created, "spec": case.new()}
    return await kube.request("PUT", f"{collection}/{name}", replaced)


def _without_cel_error_text(answer: tuple[int, Any]) -> tuple[int, Any]:
    """'Invalid value: "string": <error> evaluating rule: msg' with <error> left out: cel-python
    says "return error for overflow" where cel-go says "type conversion error from 'string' to
    'google.protobuf.Duration'"; the rest must still agree."""
    text = json.dumps(answer[1])
    return answer[0], json.loads(
        re.sub(r'(Invalid value: \\"\w+\\": )[^,\]]*?( evaluating rule:)', r"\1<error>\2", text)
    )


def comparable(code: int, body: Any) -> tuple[int, Any]:
    return code, (normalize(body) if code < 300 else status_fields(body))


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{name}-{case.id}" for name, case in CASES])
async def test_same_verdict_field_and_message(module_pair: Pair, name: str, case: Case) -> None:
    emulator = comparable(*await create_or_update(module_pair.emulator, name, case))
    real = comparable(*await create_or_update(module_pair.real, name, case))
    if case.conversion_error:  # the CEL runtime error's own words: cel-python's, or cel-go's
        emulator, real = _without_cel_error_text(emulator), _without_cel_error_text(real)
    assert_same(emulator, real)
    assert (real[0] < 300) == (case.rejected_with is None)  # and both agree with the unit test
