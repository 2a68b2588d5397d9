"""Events are posted by a few senders side by side, each object's in the order they were made."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from publishing_operator.adapters.events import KubeEvents, ObjectRef
from publishing_operator.adapters.kube import KubeApi


class SlowApi:
    """Holds every POST until released; records what was posted, in order, and the most at once."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.all_senders_waiting = asyncio.Event()

    async def create_event(self, namespace: str, event: Mapping[str, Any]) -> None:
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        if self.in_flight == KubeEvents.SENDERS:
            self.all_senders_waiting.set()
        await self.release.wait()
        self.in_flight -= 1
        involved = cast(dict[str, str], event["involvedObject"])
        self.posted.append((involved["name"], str(event["reason"])))


async def test_objects_post_side_by_side_and_each_in_order() -> None:
    api = SlowApi()
    events = KubeEvents(cast(KubeApi, api))
    refs = [ObjectRef("team", f"app-{i}", f"uid-{i}") for i in range(40)]
    for step in ("Requested", "Started", "Finished"):
        for ref in refs:
            events.post(ref, step, f"{ref.name} {step}", warning=False)
    # Several senders wait on the API at once (one at a time could not keep up with a burst).
    async with asyncio.timeout(5):
        await api.all_senders_waiting.wait()
    api.release.set()
    await events.close()
    assert api.most_at_once == KubeEvents.SENDERS
    assert len(api.posted) == 3 * len(refs)
    for ref in refs:
        assert [reason for name, reason in api.posted if name == ref.name] == [
            "Requested",
            "Started",
            "Finished",
        ]
