"""The CI rule itself: with CI=true, a skipped service test fails the run."""

import subprocess
import sys
import textwrap
from pathlib import Path


def test_skipped_service_test_fails_in_ci(tmp_path):
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.service("redis")
        def test_needs_redis():
            pytest.skip("redis-server not installed")
    """))
    conftest = (Path(__file__).parent / "conftest.py").read_text()
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    service(name): needs a service\n")
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    in_ci = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, env={"CI": "true", "PATH": ""})
    local = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, env={"CI": "", "PATH": ""})
    assert in_ci.returncode == 1, in_ci.stdout
    assert "1 failed" in in_ci.stdout
    assert local.returncode == 0, local.stdout
    assert "1 skipped" in local.stdout
