"""The built wheel: one import root, every package and data file, and it works once installed.

pyproject.toml lists every package explicitly and maps the repository's top-level folders
(analysis/, scenarios/ ...) to `loadwise.<folder>` with package-dir. An editable install
hides mistakes in that list (its finder serves whatever is on disk), so these tests build
a real wheel from the working tree, read it as a zip, and install it into a fresh venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]
# The design card's folders, each installed as loadwise.<folder>.
DESIGN_FOLDERS = ("analysis", "scenarios", "shapes", "reports", "demo", "capacity", "autoscaling")


def _source_folders() -> dict[str, Path]:
    """Import name -> source folder, as pyproject's package-dir maps them."""
    return {name: REPO / folder for name, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items()}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the working tree (uncommitted files included).

    Not built in place: setuptools writes build/ and loadwise.egg-info/ into the source
    tree, which other test runs and the editable install share.
    """
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache"))  # fmt: skip
    out = base / "dist"
    # An absolute path: a bare directory name would be read as a requirement and looked up.
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(source.resolve())],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    [built] = out.glob("*.whl")
    assert built.name == f"loadwise-{VERSION}-py3-none-any.whl"
    return built


@pytest.fixture(scope="module")
def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_one_top_level_package(names: set[str]) -> None:
    """Only `loadwise` and its metadata: a top-level `scenarios` or `analysis` in
    site-packages would collide with users' packages and with other distributions."""
    assert {name.split("/", 1)[0] for name in names} == {"loadwise", f"loadwise-{VERSION}.dist-info"}


def test_every_package_folder_and_module_is_in_the_wheel(names: set[str]) -> None:
    """Every directory holding an __init__.py under a mapped folder, and every module in it,
    ships: a subpackage missing from pyproject's explicit `packages` list would otherwise
    install a loadwise that fails with ImportError the first time that code runs."""
    folders = _source_folders()
    assert {f"loadwise.{folder}" for folder in DESIGN_FOLDERS} | {"loadwise"} <= folders.keys()
    expected = set()
    for name, root in folders.items():
        prefix = Path(*name.split("."))
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = [d for d in subdirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = Path(directory).relative_to(root)
                expected |= {(prefix / rel / f).as_posix() for f in files if f.endswith(".py")}
    assert len(expected) > 50  # the walk found the tree
    missing = sorted(expected - names)
    assert missing == [], f"in the repository but not in the wheel: {missing}"


def test_report_templates_ship_byte_for_byte(wheel: Path, names: set[str]) -> None:
    templates = sorted(p for p in (REPO / "reports" / "templates").iterdir() if p.is_file())
    assert templates, "reports/templates/ is empty"
    with zipfile.ZipFile(wheel) as archive:
        for path in templates:
            inside = f"loadwise/reports/templates/{path.name}"
            assert inside in names, f"{path.name} is not in the wheel"
            assert archive.read(inside) == path.read_bytes()


def test_console_script_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"loadwise-{VERSION}.dist-info/entry_points.txt").decode()
    assert "[console_scripts]" in entry_points
    assert "loadwise = loadwise.cli.main:run_main" in entry_points


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the wheel. Its dependencies come from this interpreter's
    site-packages through a .pth line: Python does not run .pth files found in a directory
    added that way, so this environment's editable-install finder stays out and `loadwise`
    can only come from the wheel."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    (Path(site) / "deps-from-the-test-env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield venv


def _run_in(venv: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH: the repository must not leak in.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=180, cwd=cwd, env=env)


# A venv and interpreters importing all of loadwise (Locust, pandas, matplotlib): ~4 s of the
# module's ~5 s, so these two run with the slow tests; the zip checks above take ~1 s.
@pytest.mark.slow
def test_installed_wheel_imports_every_module_from_itself(installed: Path, tmp_path: Path) -> None:
    script = (
        "import locust, importlib, pkgutil, sys\n"  # locust first: gevent patches before ssl
        "import loadwise\n"
        "from pathlib import Path\n"
        "root = Path(loadwise.__file__).parent\n"
        "for info in pkgutil.walk_packages(loadwise.__path__, 'loadwise.'):\n"
        "    if info.name.endswith('__main__'):\n"
        "        continue\n"
        "    module = importlib.import_module(info.name)\n"
        "    assert Path(module.__file__).is_relative_to(root), (info.name, module.__file__)\n"
        "for name in ('scenarios', 'shapes', 'analysis', 'reports', 'demo', 'capacity', 'autoscaling'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    sys.exit(f'a top-level {name!r} is importable')\n"
        "print(root)\n"
    )
    proc = _run_in(installed, str(installed / "bin" / "python"), "-c", script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(installed)


@pytest.mark.slow
def test_installed_console_script_renders_a_report(installed: Path, tmp_path: Path) -> None:
    """`loadwise report` from the installed wheel: the templates are found where they landed."""
    from synthetic import make_run

    run = make_run(tmp_path / "20260101T000000Z-synthetic", {("GET", "/a"): 5.0, ("GET", "/b"): 20.0}, seconds=20)
    out = tmp_path / "report.html"
    proc = _run_in(installed, str(installed / "bin" / "loadwise"), "report", str(run.path), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "GET /a" in html
