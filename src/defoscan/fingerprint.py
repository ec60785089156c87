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

SAMPLE_BLOCKS = 8  # blocks of a file read for its identity: the first, the last and six evenly between
SAMPLE_BLOCK = 1 << 16  # bytes each: 512 KiB read per file at most, whatever its size


def file_identity(path):
    """``[absolute path, size, modification time in ns, content sample]``: changes when a file is replaced or
    rewritten.

    The content sample (:func:`content_sample`) catches a file rewritten in place with the same size and
    modification time (restored from an archive, copied with ``cp -p``), wherever the change reaches a sampled
    block; a change between them, at the same size and time, goes unseen (``detect --fresh`` starts afresh).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    list
    """
    stat = os.stat(path)
    return [os.path.abspath(os.fspath(path)), stat.st_size, stat.st_mtime_ns, content_sample(path, stat.st_size)]


def content_sample(path, size=None):
    """SHA-256 hex digest of :data:`SAMPLE_BLOCKS` blocks of a file, the first and the last among them (the whole
    file when it is that small); None for what is not a regular file (a directory).

    Parameters
    ----------
    path : str or os.PathLike
    size : int, optional
        The file's size, if known.

    Returns
    -------
    str or None
    """
    if not os.path.isfile(path):
        return None
    size = os.path.getsize(path) if size is None else size
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= SAMPLE_BLOCKS * SAMPLE_BLOCK:
            sha.update(handle.read())
        else:
            last = size - SAMPLE_BLOCK
            for k in range(SAMPLE_BLOCKS):
                handle.seek(last * k // (SAMPLE_BLOCKS - 1))
                sha.update(handle.read(SAMPLE_BLOCK))
    return sha.hexdigest()


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
