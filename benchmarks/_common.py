"""What every benchmark module shares: its Markdown report when run alone."""

from __future__ import annotations


def markdown(result: dict) -> str:
    """``## name``, the rows as a Markdown table, then the notes."""
    from femfreq.calibrate._report import table

    return f"## {result['name']}\n\n{table(result['rows'])}\n{result['notes']}\n"
