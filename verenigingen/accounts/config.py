"""Every tunable of account creation, in one place."""

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountSettings:
    batch_size: int = 50  # requests per bulk job
    request_chunk_size: int = 100  # requests created per transaction when queueing in bulk
    max_concurrent_batches: int = 5  # across every host and worker
    batch_timeout: int = 1800  # seconds a bulk job may run
    individual_timeout: int = 300
    bulk_queue: str = "bulk"
    individual_queue: str = "individual"  # served before bulk work
    bulk_priority: str = "Low"
    retry_backoff: tuple[int, ...] = (300, 600, 1200)  # seconds before retry 1, 2, 3
    lease_seconds: int = 120  # a request in Processing longer than this lost its worker
    sweep_interval: int = 30
    default_role: str = "Verenigingen Member"
    eligible_statuses: frozenset[str] = frozenset({"Active"})

    @property
    def max_retries(self) -> int:
        return len(self.retry_backoff)

    def backoff(self, retry_number: int) -> int:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        return self.retry_backoff[min(retry_number, len(self.retry_backoff)) - 1]


DEFAULT_SETTINGS = AccountSettings()
