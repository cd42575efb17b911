"""Status values of requests and trackers (plain strings: they are stored as they are)."""


class RequestStatus:
    REQUESTED = "Requested"
    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class TrackerStatus:
    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class ErrorCategory:
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


class Roles:
    ADMINISTRATOR = "Verenigingen Administrator"
    MANAGER = "Verenigingen Manager"
    MEMBER = "Verenigingen Member"
    SYSTEM_MANAGER = "System Manager"
