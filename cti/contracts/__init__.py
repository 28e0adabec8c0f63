"""The bus's message catalogue: the typed events the roles exchange.

Every role may import it; none needs another role's modules to read what that role publishes.
"""
