"""`python -m portside`."""

from .cli import entry

entry()
