"""Builds the C++ unit tests against the same sor_core sources and runs them with ctest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed; it comes with the test extra: pip install '.[test]'")
    return found


@pytest.mark.slow
def test_cpp_unit_tests_pass_under_ctest():
    cmake, ninja, ctest = _tool("cmake"), _tool("ninja"), _tool("ctest")
    build = ROOT / "build" / "cpp-tests"
    env = {**os.environ, "CMAKE_MAKE_PROGRAM": ninja}
    subprocess.run([cmake, "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
                    f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_BUILD_TYPE=Release",
                    "-DSOR_BUILD_TESTS=ON", "-DSOR_BUILD_BENCHMARKS=ON"],
                   check=True, env=env, capture_output=True, text=True)
    built = subprocess.run([cmake, "--build", str(build), "-j", "2"], env=env,
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    ran = subprocess.run([ctest, "--test-dir", str(build), "--output-on-failure"],
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stdout[-6000:] + ran.stderr[-2000:]
    assert "100% tests passed" in ran.stdout
