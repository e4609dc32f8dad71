"""Every ```python block of README.md and docs/*.md runs as written: saved to a file, `python file.py`.

A block that names the scheduler address :data:`SCHEDULER` (the default of ``femfreq cluster``)
runs against a scheduler and two workers this test starts on 127.0.0.1 (the address is
filled in); no block may name any other host, so the test talks to this machine only.
A block preceded by ``<!-- not-run: reason -->`` only shows a fragment: it is checked for
its addresses but not run.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: the scheduler a doc block may name; the test substitutes one it started on 127.0.0.1
SCHEDULER = "tcp://127.0.0.1:8786"
_BLOCK = re.compile(r"(?:<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*\n)?^```python\n(?P<code>.*?)^```", re.S | re.M)
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def _blocks():
    """``(doc, line, code, not_run_reason)`` of every python block."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("code")) + 1
            yield doc.relative_to(ROOT).as_posix(), line, m.group("code"), m.group("reason")


BLOCKS = list(_blocks())
IDS = [f"{doc}:{line}" for doc, line, _, _ in BLOCKS]
#: docs whose block is fixed in another change (the runnable text is in the firsthour branch's report)
_PENDING = {}
RUN = [pytest.param(*block, id=i, marks=pytest.mark.xfail(strict=True, reason=_PENDING[block[0]]))
       if block[0] in _PENDING else pytest.param(*block, id=i) for block, i in zip(BLOCKS, IDS)]


def _hosts(code):
    """Every host the code names: in ``scheme://host`` and as a bare IPv4/IPv6 literal."""
    hosts = set(re.findall(r"\b[a-z][a-z0-9+.-]*://\[?([^/:\]\s\"'`]+)", code, re.I))
    hosts |= set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", code))
    return hosts


def _is_loopback(host):
    if host.lower() in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_docs_have_python_blocks():
    assert any(doc == "README.md" for doc, _, _, _ in BLOCKS)
    assert sum(reason is not None for *_, reason in BLOCKS) <= 2, "not-run marks must stay rare"


@pytest.mark.parametrize("doc, line, code, reason", BLOCKS, ids=IDS)
def test_block_names_only_this_machine(doc, line, code, reason):
    remote = sorted(h for h in _hosts(code) if not _is_loopback(h))
    assert not remote, f"{doc}:{line} names {remote}: a doc block may name only {SCHEDULER} (the test's own)"


@pytest.mark.parametrize("doc, line, code, reason", RUN)
def test_block_runs_as_written(doc, line, code, reason, tmp_path, request):
    if reason is not None:
        pytest.skip(f"{doc}:{line} is marked not-run: {reason}")
    remote = sorted(h for h in _hosts(code) if not _is_loopback(h))
    if remote:  # never contact another machine, whatever a doc says
        pytest.fail(f"{doc}:{line} names {remote}; not run")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if SCHEDULER in code:
        dask = request.getfixturevalue("dask_processes")
        address = dask.scheduler()
        dask.workers(address, 2, env={"PYTHONPATH": env["PYTHONPATH"]})
        code = code.replace(SCHEDULER, address)
    script = tmp_path / f"{Path(doc).stem}_{line}.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, f"{doc}:{line} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr, f"{doc}:{line} printed a traceback:\n{proc.stderr[-4000:]}"
