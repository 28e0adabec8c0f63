"""The store role: the CRM and the interaction log (SQLAlchemy, SQLite or PostgreSQL).

Customers and their lookups for the screen-pop and the IVR (``customers``), the batching
writer that records every bus event as an interaction and its timeline (``recorder``,
``writer``, ``timeline``), reports from that log (``reports``, formulas in ``cti.kpi``),
customer insight (``insight``), and the outside world: an external CRM (``external``), write-back
and webhooks (``writeback``, ``webhooks``).
"""
