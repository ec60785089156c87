"""Fingerprints of what made a result, so that resumable work is reused only when nothing it depends on changed.

One scheme for every resumable piece (the chunked pipeline's work directory, the benchmark suite's results, training
checkpoints, synthetic datasets): a fingerprint is a JSON-able document of the inputs' identities and the parameters;
a kept result is reused only when its recorded fingerprint equals the new one after a JSON round trip (tuples and
lists compare equal, as they are stored).
"""

import functools
import hashlib
import json
import os
import pathlib


def file_identity(path):
    """``[absolute path, size, modification time in ns]``: changes when a file is replaced or rewritten.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    list
    """
    stat = os.stat(path)
    return [os.path.abspath(os.fspath(path)), stat.st_size, stat.st_mtime_ns]


def canonical(document):
    """The document as it reads back from JSON (tuples become lists, keys strings): what is compared."""
    return json.loads(json.dumps(document, sort_keys=True, default=str))


def same(recorded, document):
    """Whether a recorded fingerprint equals ``document`` (both compared as they read back from JSON)."""
    return canonical(recorded) == canonical(document)


def digest(document):
    """SHA-256 hex digest of the document's canonical JSON: a short key for a cache or a file name."""
    text = json.dumps(canonical(document), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def source_digest():
    """SHA-256 of the package's own Python source (every ``.py`` file under ``defoscan``, by relative path).

    Part of a benchmark result's fingerprint, so a kept result made by other code is never mixed into a table
    (issue 22): any change to the source, a comment included, makes every kept result stale.
    """
    root = pathlib.Path(__file__).resolve().parent
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        sha.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()
