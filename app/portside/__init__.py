"""portside: a live dashboard of the network ports on this machine."""

__version__ = "0.1.0"
