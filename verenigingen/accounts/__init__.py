"""The account creation engine: requests, batches, retries and the tracker, behind ports.

Nothing here imports Frappe, SQLAlchemy or RQ: hosts implement :mod:`verenigingen.accounts.ports`.
"""
