"""What every benchmark module shares: its Markdown report when run alone."""

from __future__ import annotations


def markdown(result: dict) -> str:
    """``## name``, the rows as a Markdown table, then the notes."""
    from femfreq.calibrate._report import table

    return f"## {result['name']}\n\n{table(result['rows'])}\n{result['notes']}\n"


def model_key(name: str = "satellite") -> str:
    """A short hash of a shipped model's files, so cached matrices follow model changes."""
    import hashlib

    from femfreq.model import models_dir

    h = hashlib.sha1()
    for f in sorted(models_dir().glob(f"{name}.*")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:10]
