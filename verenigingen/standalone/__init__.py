"""The engine without Frappe: SQL store, RQ on Redis, and the ``verenigingen`` command line."""
