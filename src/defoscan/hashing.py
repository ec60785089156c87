"""Content hashes of files, for manifests and model cards."""

import hashlib


def file_sha256(path):
    """SHA-256 of a file's bytes, hex, read in 1 MiB blocks (files larger than memory are fine)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
