"""Warnings and stage messages: one :mod:`logging` logger for the package, its warnings kept for ``run.json``.

Every module reports through :data:`logger` (``logging.getLogger("defoscan")``): :func:`warn` for something the user
must know about the result (a cell size the model was not trained for, values dropped as invalid, ...), ``logger.info``
for stage messages. The library adds no handler of its own (a Python user configures logging as usual); the command
line adds one that writes each warning as one line on stderr, terminal or not (``-q`` silences them, ``-v`` adds the
stage messages). :func:`collected_warnings` keeps a run's warnings so that ``run.json`` and the report list them.
"""

import logging
from contextlib import contextmanager

logger = logging.getLogger("defoscan")


def warn(message):
    """Report ``message`` (one line, no trailing full stop needed) as a warning of the current run.

    Parameters
    ----------
    message : str
    """
    logger.warning(message)


class _Collector(logging.Handler):
    """Keeps the messages of WARNING records and above, each once, in order."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)


@contextmanager
def collected_warnings():
    """Collect the warnings reported through :data:`logger` inside the block.

    Yields
    ------
    list of str
        The messages, each once, in the order reported; filled as the block runs.

    Examples
    --------
    >>> with collected_warnings() as messages:
    ...     warn("cells of 10 m")
    >>> messages
    ['cells of 10 m']
    """
    collector = _Collector()
    logger.addHandler(collector)
    try:
        yield collector.messages
    finally:
        logger.removeHandler(collector)
