"""The one error type users see: a message that names the file and what was wrong."""


class NStyleError(ValueError):
    """A problem with the user's input or environment; the CLI prints it and exits 2.

    A ``ValueError``, so code that already catches bad values catches nstyle's too;
    ``NStyleTypeError`` (also a ``TypeError``) is raised where a value has the wrong type.
    """


class NStyleTypeError(NStyleError, TypeError):
    """An argument of the wrong type (a string where a number is needed, ...)."""
