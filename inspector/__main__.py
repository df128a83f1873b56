"""`python -m inspector` runs the hfsize command line."""

from .launch import entry

entry()
