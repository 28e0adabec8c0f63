"""IVR engine: declarative menus executed over FastAGI.

Filled in by the IVR issue; the foundation only reserves the package.
"""
