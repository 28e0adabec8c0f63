"""Agent console and supervisor monitor: aiohttp pages and websockets.

Filled in by the console issue; the foundation only reserves the package.
"""
