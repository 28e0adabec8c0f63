"""The only composition root: settings, wiring, the server's lifecycle, the web app, the CLI
and the demo. Nothing imports ``app``; ``app`` may import every layer, and ``sandbox`` for the
``pbx`` commands and the demo.
"""
