"""Webhooks against real local HTTP servers: retries with backoff, hanging hooks isolated."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator

import orjson
import pytest
from alert_hooks import Hook

from ingest.alerts import AlertEvent, WebhookNotifier
from ingest.alerts.webhooks import backoff_s
from ingest.settings import WebhookSettings

EVENT = AlertEvent(
    "0123456789abcdef0123456789abcdef", "odor_nh3_high", "warning", "firing", "WC-0001",
    "WC-0001-OD-1", "odor", "nh3_ppm", 3.4, 2.0, "2026-11-24T08:00:00Z", None,
    "NH3 3.4 ppm above 2 ppm for 2 min at People's Park North (WC-0001-OD-1)", None,
    1_795_500_000_000, "0123456789abcdef0123456789abcdef-1",
)


@pytest.fixture
def hooks() -> Iterator[list[Hook]]:
    made: list[Hook] = []
    yield made
    for hook in made:
        hook.close()


def hook(made: list[Hook], statuses: list[int], hang: bool = False) -> Hook:
    server = Hook(statuses, hang)
    made.append(server)
    return server


async def wait_for(condition: threading.Event, timeout: float = 10) -> bool:
    return await asyncio.to_thread(condition.wait, timeout)


def test_retries_with_backoff_until_delivered(hooks: list[Hook]) -> None:
    flaky = hook(hooks, [500, 503, 200])

    async def main() -> WebhookNotifier:
        settings = WebhookSettings(urls=[flaky.url], max_attempts=5, timeout_s=5)
        async with WebhookNotifier(settings, backoff_base_s=0.02, grace_s=10) as notifier:
            notifier.submit(EVENT)
        return notifier

    notifier = asyncio.run(main())
    assert len(flaky.bodies) == 3
    assert all(body == EVENT.payload() for body in flaky.bodies)
    assert orjson.loads(flaky.bodies[0])["alert_id"] == EVENT.alert_id
    assert (notifier.delivered, notifier.failed) == (1, 0)


def test_gives_up_after_max_attempts_and_on_client_errors(hooks: list[Hook]) -> None:
    down, refused = hook(hooks, [500]), hook(hooks, [404])

    async def main() -> WebhookNotifier:
        settings = WebhookSettings(urls=[down.url, refused.url], max_attempts=3)
        async with WebhookNotifier(settings, backoff_base_s=0.01, grace_s=10) as notifier:
            notifier.submit(EVENT)
        return notifier

    notifier = asyncio.run(main())
    assert len(down.bodies) == 3  # retried up to max_attempts
    assert len(refused.bodies) == 1  # a 404 will not get better by retrying
    assert (notifier.delivered, notifier.failed) == (0, 2)


def test_hanging_hook_delays_neither_submit_nor_other_hooks(hooks: list[Hook]) -> None:
    stuck, good = hook(hooks, [200], hang=True), hook(hooks, [200])

    async def main() -> tuple[bool, bool, WebhookNotifier]:
        settings = WebhookSettings(urls=[stuck.url, good.url], timeout_s=30, max_attempts=3)
        async with WebhookNotifier(settings, grace_s=0.2) as notifier:
            for _ in range(20):
                notifier.submit(EVENT)  # returns at once: nothing awaited here
            assert len(good.bodies) == 0 and len(stuck.bodies) == 0
            stuck_seen = await wait_for(stuck.arrived)
            for _ in range(200):
                if len(good.bodies) >= 20:
                    break
                await asyncio.sleep(0.05)
            # the good hook got all 20 while the stuck one still holds its requests
            good_done = len(good.bodies) == 20 and not stuck.release.is_set()
        return stuck_seen, good_done, notifier

    stuck_seen, good_done, notifier = asyncio.run(asyncio.wait_for(main(), 20))
    assert stuck_seen and good_done
    assert notifier.delivered == 20  # the stuck ones were abandoned after the grace period
    assert 1 <= len(stuck.bodies) <= 8  # at most its own concurrency slots


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    waits = [backoff_s(n, 1.0, 20.0, rng) for n in range(1, 9)]
    for n, wait in enumerate(waits, start=1):
        ceiling = min(20.0, 2 ** (n - 1))
        assert ceiling / 2 <= wait <= ceiling
    assert waits[-1] <= 20.0 and waits[3] > waits[0]
    assert len({round(backoff_s(3, 1.0, 20.0, rng), 6) for _ in range(10)}) > 1  # jittered


def test_no_urls_means_nothing_to_do() -> None:
    async def main() -> WebhookNotifier:
        async with WebhookNotifier(WebhookSettings()) as notifier:
            notifier.submit(EVENT)
        return notifier

    notifier = asyncio.run(main())
    assert (notifier.delivered, notifier.failed, notifier.dropped) == (0, 0, 0)
