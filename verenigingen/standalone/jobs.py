"""Job functions RQ workers run. Each process builds its host once, from the environment."""

from functools import cache

from verenigingen.accounts.bulk import process_bulk_account_creation_batch
from verenigingen.accounts.individual import process_individual_request
from verenigingen.standalone.host import StandaloneHost


@cache
def _host():
    return StandaloneHost().host


def run_bulk_batch(tracker: str, batch_number: int) -> dict:
    outcome = process_bulk_account_creation_batch(_host(), tracker, batch_number)
    return vars(outcome)


def run_individual(request: str) -> str:
    return process_individual_request(_host(), request)
