"""Every code example in the README runs: Python blocks are executed, shell blocks are run line by
line in a scratch folder (the two set-up commands at the top are checked separately: CI runs the
test one, and the quickstart script it installs is run here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
PY_BLOCKS = [code for lang, code in BLOCKS if lang == "python"]
SH_LINES = [
    line.split("  #")[0].strip()
    for lang, code in BLOCKS if lang == "bash"
    for line in code.splitlines()
    if line.strip().startswith(("dmr ", "echo ", "python benchmarks"))
]
MY_MODELS = """\
version: "2026.05.01"
providers:
  groq:
    api_key_env: GROQ_API_KEY
    tiers:
      low: llama-3.3-8b-instant
      medium: llama-3.3-70b-versatile
      high: llama-3.3-70b-versatile
models:
  llama-3.3-8b-instant:
    cost: { input_per_1m: 0.05, output_per_1m: 0.08 }
  llama-3.3-70b-versatile:
    cost: { input_per_1m: 0.59, output_per_1m: 0.79 }
"""


def test_readme_starts_with_the_two_commands():
    first_two = [code.strip() for lang, code in BLOCKS[:2]]
    assert "examples/quickstart.py" in first_two[0] and "pip install" in first_two[0]
    assert first_two[1] == "bash scripts/test.sh"
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_quickstart_script_classifies_offline():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                         capture_output=True, text=True, check=True).stdout
    rows = out.strip().splitlines()
    assert rows[0].split()[:2] == ["tier", "model"]
    assert len(rows) >= 6
    tiers = {row.split()[0] for row in rows[1:]}
    assert {"low", "high"} <= tiers


@pytest.mark.parametrize("code", PY_BLOCKS, ids=[f"python-{i}" for i in range(len(PY_BLOCKS))])
def test_python_example_runs(code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})


@pytest.mark.parametrize("line", SH_LINES, ids=SH_LINES)
def test_shell_example_runs(line, tmp_path):
    if "https://example.com" in line:
        pytest.skip("example.com is a placeholder URL; `dmr models pull` is tested against a local HTTPS server")
    (tmp_path / "my-models.yaml").write_text(MY_MODELS)
    (tmp_path / "in.jsonl").write_text('{"task": "Hi"}\n{"task": "Prove Fermat\'s little theorem."}\n')
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    if line.startswith("python benchmarks"):
        line = line.replace("python benchmarks/latency.py", f"{sys.executable} {ROOT}/benchmarks/latency.py --n 50 --max-size 100000")
    if line.startswith("dmr doctor"):
        assert shutil.which("dmr", path=env["PATH"])
    result = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
