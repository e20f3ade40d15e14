"""The base class of every error a user can cause (bad input, files, folders).

The command line turns a :class:`SpikingGanError` into one line on stderr (exit status 2);
any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations


class SpikingGanError(Exception):
    """A problem with the user's input, files or folders (not a bug): reported as one line."""
