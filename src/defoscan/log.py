"""Warnings and stage messages: one :mod:`logging` logger for the package, its warnings kept for ``run.json``.

Every module reports through :data:`logger` (``logging.getLogger("defoscan")``): :func:`warn` for something the user
must know about the result (a cell size the model was not trained for, values dropped as invalid, ...), ``logger.info``
for stage messages. The library adds no handler of its own (a Python user configures logging as usual); the command
line adds one that writes each warning as one line on stderr, terminal or not (``-q`` silences them, ``-v`` adds the
stage messages). :func:`collected_warnings` keeps a run's warnings so that ``run.json`` and the report list them.
"""

import logging
import sys
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


# --- the command line's handler ----------------------------------------------------------------------------------

_PREFIXES = {logging.ERROR: "defoscan: error: ", logging.WARNING: "defoscan: warning: "}


class _LineHandler(logging.Handler):
    """Writes each record as one line, ``defoscan: warning: MESSAGE``, on the ``sys.stderr`` of the moment.

    The stream is looked up at each record, not kept: a progress bar on the terminal swaps ``sys.stderr`` for a
    proxy that prints above the bar (and pytest swaps it per test).
    """

    def emit(self, record):
        try:
            text = record.getMessage()
            prefix = next((p for level, p in _PREFIXES.items() if record.levelno >= level), "defoscan: ")
            if record.name == "py.warnings":  # "file:line: Category: message", then the source line
                text, prefix = text.strip().splitlines()[0], "defoscan: python warning: "
            sys.stderr.write(prefix + " ".join(text.split()) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure_cli_logging(verbosity=0, terminal=None):
    """Set up what the command line writes on stderr; calling it again replaces the earlier setup.

    Warnings are written off a terminal as on one; the stage messages (``logger.info``) on a terminal, or anywhere
    with ``verbosity`` 1; Python warnings of the libraries underneath (numpy, pyogrio, ...) only with
    ``verbosity`` 1 and above, as one line each (they are about the code, rarely about the user's data). The
    package logger keeps passing warnings to :func:`collected_warnings` whatever is shown, so that ``-q`` runs
    still list them in ``run.json``.

    Parameters
    ----------
    verbosity : int
        -1 (``-q``: errors only), 0 (warnings; stage messages too on a terminal), 1 (``-v``: stage messages and
        Python warnings), 2 (``-vv``: debug messages as well).
    terminal : bool, optional
        Whether stderr is a terminal; ``sys.stderr.isatty()`` by default.
    """
    if terminal is None:
        terminal = sys.stderr.isatty()
    if verbosity < 0:
        level = logging.ERROR
    elif verbosity == 0:
        level = logging.INFO if terminal else logging.WARNING
    else:
        level = logging.INFO if verbosity == 1 else logging.DEBUG
    logger.setLevel(min(level, logging.INFO))  # the collector sees the warnings whatever is shown
    _replace_handler(logger, _LineHandler(level))
    logging.captureWarnings(True)
    python = logging.getLogger("py.warnings")
    python.propagate = False  # never to the root logger's last-resort handler, which prints them raw
    _replace_handler(python, _LineHandler(logging.WARNING) if verbosity >= 1 else logging.NullHandler())


def _replace_handler(target, handler):
    for old in [h for h in target.handlers if getattr(h, "_defoscan_cli", False)]:
        target.removeHandler(old)
    handler._defoscan_cli = True
    target.addHandler(handler)
