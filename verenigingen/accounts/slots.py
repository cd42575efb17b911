"""Batch slots: at most ``max_concurrent_batches`` bulk batches run at once, on every host and every RQ
version, however many workers serve the bulk queue. A slot is a row held with a lease: taken by one
conditional write, renewed while its batch runs, released when it ends, and free again once its lease
runs out when its worker died.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from verenigingen.accounts.ports import Host


class SlotLost(Exception):
    """This batch stalled past its slot's lease and another batch holds the slot now: stop here."""


@dataclass
class BatchSlot:
    host: Host
    number: int
    holder: str
    lease_until: datetime

    @property
    def pool(self) -> str:
        return self.host.settings.bulk_queue

    def renew(self, now: datetime) -> datetime:
        """Extend the lease, inside the caller's transaction (the one that claims the next member, so that
        a claim never outlives the slot it runs under); ``SlotLost`` when another holder has it by now."""
        until = now + timedelta(seconds=self.host.settings.lease_seconds)
        if not self.host.store.renew_slot(self.pool, self.number, self.holder, until):
            raise SlotLost(f"batch slot {self.number} was taken over after its lease ran out")
        self.lease_until = until
        return until

    def release(self) -> None:
        with self.host.store.transaction():
            self.host.store.release_slot(self.pool, self.number, self.holder)


def take_slot(host: Host, holder: str) -> BatchSlot | None:
    """The first free slot, or None when all are held (the batch then waits for one to be handed on)."""
    now = host.clock()
    until = now + timedelta(seconds=host.settings.lease_seconds)
    with host.store.transaction():
        for number in range(1, host.settings.max_concurrent_batches + 1):
            if host.store.take_slot(host.settings.bulk_queue, number, holder, now, until):
                return BatchSlot(host, number, holder, until)
    return None
