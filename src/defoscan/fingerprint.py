"""Fingerprints of what made a result, so that resumable work is reused only when nothing it depends on changed.

One scheme for every resumable piece (the chunked pipeline's work directory, the benchmark suite's results, training
checkpoints, synthetic datasets): a fingerprint is a JSON-able document of the inputs' identities and the parameters;
a kept result is reused only when its recorded fingerprint equals the new one after a JSON round trip (tuples and
lists compare equal, as they are stored).
"""

import hashlib
import json
import os


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
