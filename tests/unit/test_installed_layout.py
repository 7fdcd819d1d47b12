"""The installed distribution claims one import name, ``mailpulse``: the repository's folders exporter/,
parsers/ and probes/ are installed as mailpulse.exporter, mailpulse.parsers and mailpulse.probes, never
as top-level packages that would collide with other distributions in a shared environment.

Built and installed for real: a wheel from this checkout (pip, with the build backend pyproject.toml asks for) into a
fresh virtual environment, without dependencies (nothing is fetched)."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (built,) = out.glob("mailpulse-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top_level = zf.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert {"mailpulse"} == tops
    assert ["mailpulse"] == top_level
    for sub in ("exporter", "parsers", "probes"):
        assert f"mailpulse/{sub}/__init__.py" in names
        assert f"mailpulse/{sub}/py.typed" in names
    assert "mailpulse/exporter/sources/files.py" in names  # subpackages come along through the symlinks


def test_installed_into_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    ours = {p.name for p in site.iterdir() if not p.name.startswith(("pip", "_distutils", "distutils", "setuptools",
                                                                     "pkg_resources", "__pycache__", "_virtualenv"))}  # fmt: skip
    assert {"mailpulse"} == {n for n in ours if not n.endswith(".dist-info")}
    # the parsers need only the standard library: importable from the installed package, run from elsewhere
    code = ("import mailpulse.parsers.postfix as p; "
            "print(type(p.PostfixParser()('Nov 24 16:58:17 mail postfix/qmgr[1]: 4AA091855DA0: removed')).__name__)")  # fmt: skip
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "QueueRemoved" == proc.stdout.strip()
