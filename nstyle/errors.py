"""The one error type users see: a message that names the file and what was wrong."""


class NStyleError(Exception):
    """A problem with the user's input or environment; the CLI prints it and exits 2."""
