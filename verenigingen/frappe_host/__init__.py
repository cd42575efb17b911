"""The engine's host on Frappe: the only engine-side code that imports frappe."""
