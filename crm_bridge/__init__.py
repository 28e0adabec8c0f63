"""CRM store and interaction log (SQLAlchemy).

Filled in by the CRM issue; the foundation only reserves the package.
"""
