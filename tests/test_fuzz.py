"""10,000 random, mostly malformed calls in a subprocess: no crash, and every rejection is a
TypeError or ValueError that names the argument."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "fuzz_calls.py")


@pytest.mark.parametrize("seed", [0, 1])
def test_malformed_calls_never_crash_and_name_the_argument(seed):
    out = subprocess.run([sys.executable, SCRIPT, str(seed), "5000"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]  # a crash would be a negative signal code
    result = json.loads(out.stdout)
    counts = result["counts"]
    assert sum(counts.values()) == 5000
    assert set(counts) <= {"ok", "TypeError", "ValueError"}
    assert counts.get("ok", 0) > 500 and counts.get("TypeError", 0) > 100
    assert counts.get("ValueError", 0) > 100
    assert result["unnamed"] == []
