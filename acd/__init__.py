"""Skills-based automatic call distribution: a pure routing engine and the agent state table.

Filled in by the ACD issue; the foundation only reserves the package.
"""
