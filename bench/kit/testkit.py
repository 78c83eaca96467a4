"""The parts of the test kit that the benchmarks use, imported in this one place: a
throwaway database, fresh topics, the webhook receiver, a manager per market, a service's
environment, and the factories of raw and stored records."""

from tests.factories import field_submission, raw_envelope, stored_record
from tests.helpers import (
    KAFKA,
    WebhookSink,
    country_managers,
    delete_topics,
    free_port,
    service_env,
    throwaway_database,
)

__all__ = [
    "KAFKA",
    "WebhookSink",
    "country_managers",
    "delete_topics",
    "field_submission",
    "free_port",
    "raw_envelope",
    "service_env",
    "stored_record",
    "throwaway_database",
]
