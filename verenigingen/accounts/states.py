"""Status values of requests and trackers (plain strings: they are stored as they are)."""


class RequestStatus:
    REQUESTED = "Requested"  # written while a bulk operation is being prepared; no worker sees it yet
    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    OPEN = (REQUESTED, QUEUED, PROCESSING)


class TrackerStatus:
    PREPARING = "Preparing"  # its requests are still being written; workers and completion ignore it
    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"  # every request succeeded
    COMPLETED_WITH_ERRORS = "Completed with errors"  # some failed
    FAILED = "Failed"  # none succeeded
    CANCELLED = "Cancelled"  # nothing to do: no request could be made

    FINISHED = (COMPLETED, COMPLETED_WITH_ERRORS, FAILED, CANCELLED)


def finished_status(successful: int, failed: int) -> str:
    """What a finished tracker is called: the business rule lives here, not in a store."""
    if failed == 0:
        return TrackerStatus.COMPLETED if successful else TrackerStatus.CANCELLED
    return TrackerStatus.FAILED if successful == 0 else TrackerStatus.COMPLETED_WITH_ERRORS


class ErrorCategory:
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


class Roles:
    ADMINISTRATOR = "Verenigingen Administrator"
    MANAGER = "Verenigingen Manager"
    MEMBER = "Verenigingen Member"
    VOLUNTEER = "Verenigingen Volunteer"
    SYSTEM_MANAGER = "System Manager"
