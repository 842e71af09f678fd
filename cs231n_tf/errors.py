"""The package's error types.

Every error raised for bad input derives from :class:`Cs231nError` and from the matching built-in
(``ValueError``, ``TypeError``, ``FileNotFoundError``), so callers can catch either. The CLI turns
these into one line on stderr and exit code 2.
"""


class Cs231nError(Exception):
    """Base class of every error the package raises on purpose."""


class ConfigError(Cs231nError, ValueError):
    """An argument or option has a value that is not accepted."""


class ShapeError(Cs231nError, ValueError):
    """Tensors whose shapes do not fit together."""


class InputTypeError(Cs231nError, TypeError):
    """An argument of the wrong type."""


class DataError(Cs231nError, ValueError):
    """A data set that is missing, unreadable or malformed."""


class RunDirError(Cs231nError, ValueError):
    """A run directory that is missing, incomplete or corrupt."""


class ExportError(Cs231nError, RuntimeError):
    """An export or conversion that cannot be done as asked."""


class NonFiniteLossError(Cs231nError, ArithmeticError):
    """Training produced a NaN or Inf loss; the run stopped at that step."""

    def __init__(self, message, step, last_good_checkpoint=None):
        super().__init__(message)
        self.step = step
        self.last_good_checkpoint = last_good_checkpoint
