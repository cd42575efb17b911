"""Job functions RQ workers run. Each process builds its host once, from the environment.

VERENIGINGEN_HOST_FACTORY ("module:function") builds the host instead, for a host that wraps the
standard one (the test suite uses it to inject faults into real worker processes).
"""

import importlib
import os
from functools import cache

from verenigingen.accounts.bulk import process_bulk_account_creation_batch
from verenigingen.accounts.individual import process_individual_request
from verenigingen.accounts.ports import Host
from verenigingen.standalone.host import StandaloneHost

_standalone: StandaloneHost | None = None


def warm_up(standalone: StandaloneHost) -> None:
    """Called by the worker before it forks: work horses inherit the host instead of building one each."""
    global _standalone
    _standalone = standalone
    _host()


@cache
def _host() -> Host:
    if factory := os.environ.get("VERENIGINGEN_HOST_FACTORY"):
        module, _, function = factory.partition(":")
        return getattr(importlib.import_module(module), function)()
    return (_standalone or StandaloneHost()).host


def run_bulk_batch(tracker: str, batch_number: int, generation: int = 0) -> dict:
    outcome = process_bulk_account_creation_batch(_host(), tracker, batch_number, generation)
    return vars(outcome)


def run_individual(request: str) -> str:
    return process_individual_request(_host(), request)
