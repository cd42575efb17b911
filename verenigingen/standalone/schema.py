"""Tables of the standalone host. Column names follow the DocType field names (the cross-host contract);
unique constraints back the idempotency rules. Widths are shared: an e-mail or a name that fits a
member fits its user, its request and every column that names a user."""

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, Numeric, String, Table, Text
from sqlalchemy.dialects import mysql

metadata = MetaData()


EMAIL = 254  # RFC 5321's longest address; users are named by their e-mail
FULL_NAME = 300  # first name, tussenvoegsel and last name (140 each in Frappe) joined
DOCNAME = 40

_MICROSECONDS = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _timestamp(name: str) -> Column:
    return Column(name, _MICROSECONDS, nullable=True)  # naive UTC, to the microsecond on every database


users = Table(
    "users",
    metadata,
    Column("name", String(EMAIL), primary_key=True),  # the e-mail address, as in Frappe
    Column("email", String(EMAIL), nullable=False, unique=True),
    Column("full_name", String(FULL_NAME), nullable=False),
    Column("enabled", Integer, nullable=False, default=1),
    Column("role_profile", String(140)),
    Column("member", String(DOCNAME), unique=True),  # one member -> at most one user
    Column("created_by", String(EMAIL)),
    _timestamp("creation"),
)

user_roles = Table(
    "user_roles",
    metadata,
    Column("user", String(EMAIL), primary_key=True),
    Column("role", String(140), primary_key=True),
)

members = Table(
    "members",
    metadata,
    Column("name", String(DOCNAME), primary_key=True),
    Column("member_id", String(30), unique=True),
    Column("first_name", String(140), nullable=False),
    Column("tussenvoegsel", String(140)),
    Column("last_name", String(140), nullable=False),
    Column("full_name", String(FULL_NAME), nullable=False),
    Column("email", String(EMAIL), unique=True),
    Column("birth_date", String(10)),
    Column("member_since", String(10)),
    Column("chapter", String(140)),
    Column("phone", String(30)),
    Column("address_line1", String(240)),
    Column("city", String(140)),
    Column("postcode", String(20)),
    Column("country", String(2)),
    Column("iban", String(34)),
    Column("dues_amount", Numeric(10, 2)),
    Column("billing_frequency", String(20)),
    Column("mollie_customer_id", String(80)),
    Column("mollie_subscription_id", String(80)),
    Column("membership_type", String(40)),
    Column("status", String(40)),
    Column("paid", String(40)),
    Column("privacy_accepted", String(40)),
    Column("user", String(EMAIL), unique=True),
    Column("source_import", String(DOCNAME)),
    _timestamp("creation"),
    _timestamp("modified"),
)

account_creation_requests = Table(
    "account_creation_requests",
    metadata,
    Column("name", String(DOCNAME), primary_key=True),
    Column("request_type", String(20), nullable=False),
    Column("source_record", String(DOCNAME), nullable=False),
    # = source_record while the request is open, NULL after: at most one open request per member.
    Column("open_for_member", String(DOCNAME), unique=True),
    Column("email", String(EMAIL), nullable=False),
    Column("full_name", String(FULL_NAME), nullable=False),
    Column("status", String(20), nullable=False),
    Column("pipeline_stage", String(40)),
    Column("priority", String(10), nullable=False),
    Column("roles", Text, nullable=False),  # newline-separated role names
    Column("role_profile", String(140)),
    Column("bulk_operation_tracker", String(DOCNAME)),
    Column("batch_number", Integer),
    Column("retry_count", Integer, nullable=False, default=0),
    # Which job generation should run it: raised by a retry, or when its job's worker died.
    Column("job_generation", Integer, nullable=False, default=0),
    _timestamp("next_retry_at"),
    _timestamp("lease_expires_at"),
    Column("error_category", String(20)),
    Column("failure_reason", Text),
    Column("created_user", String(EMAIL)),
    Column("requested_by", String(EMAIL), nullable=False),
    Column("processed_by", String(EMAIL)),
    _timestamp("creation"),
    _timestamp("started_at"),
    _timestamp("completed_at"),
    Index("ix_requests_batch", "bulk_operation_tracker", "batch_number", "status"),
    Index("ix_requests_status", "status", "next_retry_at"),
)

bulk_operation_trackers = Table(
    "bulk_operation_trackers",
    metadata,
    Column("name", String(DOCNAME), primary_key=True),
    Column("operation_type", String(40), nullable=False),
    Column("source_import", String(DOCNAME)),
    Column("status", String(30), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("total_records", Integer, nullable=False),
    Column("processed_records", Integer, nullable=False, default=0),
    Column("successful_records", Integer, nullable=False, default=0),
    Column("failed_records", Integer, nullable=False, default=0),
    Column("current_batch", Integer, nullable=False, default=0),
    Column("total_batches", Integer, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("requested_by", String(EMAIL), nullable=False),
    Column("error_summary", Text),
    _timestamp("preparation_expires_at"),  # while Preparing: the writer renews it with every chunk
    _timestamp("creation"),
    _timestamp("modified"),  # the last time a counter or the status moved
    _timestamp("started_at"),
    _timestamp("completed_at"),
    Index("ix_trackers_status", "status"),
)

# At most N bulk batches at once: one row per slot, held with a lease (see accounts/slots.py).
batch_slots = Table(
    "batch_slots",
    metadata,
    Column("pool", String(140), primary_key=True),
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("holder", String(400)),
    _timestamp("lease_expires_at"),
)

mijnrood_imports = Table(
    "mijnrood_imports",
    metadata,
    Column("name", String(DOCNAME), primary_key=True),
    Column("file", String(1000), nullable=False),
    Column("encoding", String(40)),
    Column("status", String(20), nullable=False),
    Column("row_count", Integer, nullable=False, default=0),
    Column("invalid_rows", Integer, nullable=False, default=0),
    Column("members_created", Integer, nullable=False, default=0),
    Column("members_updated", Integer, nullable=False, default=0),
    Column("members_unchanged", Integer, nullable=False, default=0),
    Column("bulk_operation_tracker", String(DOCNAME)),
    Column("rejected_rows_file", String(1000)),
    Column("imported_by", String(EMAIL), nullable=False),
    _timestamp("creation"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference_doctype", String(60), nullable=False),
    Column("reference_name", String(140), nullable=False),
    Column("from_status", String(30)),
    Column("to_status", String(30), nullable=False),
    Column("changed_by", String(EMAIL), nullable=False),
    Column("worker", String(140)),
    Column("reason", Text),
    _timestamp("timestamp"),
    Index("ix_audit_reference", "reference_doctype", "reference_name"),
)

__all__ = [
    "account_creation_requests",
    "audit_log",
    "batch_slots",
    "bulk_operation_trackers",
    "members",
    "metadata",
    "mijnrood_imports",
    "user_roles",
    "users",
]
