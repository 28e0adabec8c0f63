"""CTI core: Asterisk protocol layers (AMI, FastAGI), the live call model, the event bus,
settings, the Asterisk sandbox and the server that wires them together."""

__version__ = "0.1.0"
