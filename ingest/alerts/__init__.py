"""Alerts (SPEC section 6): rules, the incident engine, webhooks, and `sanitel alerts`.

The pipeline feeds `AlertEngine` readings, statuses, acks and a 1 s `sweep`, publishes each
returned `AlertEvent` (`topic()`, `payload()`), writes its `line()`, and hands it to
`WebhookNotifier.submit`. Every returned event is already in the engine's outbox (stored with
the incident change): the pipeline `confirm`s each event_id once its publish is PUBACKed and
its line stored, and delivers `unconfirmed()` again at start.
"""

from ingest.alerts.engine import AlertEngine
from ingest.alerts.events import AlertEvent, Incident, parse_ack
from ingest.alerts.incident_db import AlertStoreError
from ingest.alerts.rules import AlertRulesError
from ingest.alerts.webhooks import WebhookNotifier

__all__ = [
    "AlertEngine",
    "AlertEvent",
    "AlertRulesError",
    "AlertStoreError",
    "Incident",
    "WebhookNotifier",
    "parse_ack",
]
