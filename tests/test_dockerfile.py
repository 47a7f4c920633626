"""The Dockerfile and .dockerignore, checked by reading them (CI does not build the image)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CHART_VALUES = REPO / "deploy" / "helm" / "loadwise" / "values.yaml"

SECRET_NAME = re.compile(r"PASS|TOKEN|SECRET|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
SECRET_FILE = re.compile(r"(^|/)(\.env(\..*)?|id_rsa.*|id_ed25519.*|.*\.pem|.*\.key)$")
# repository[:tag][@sha256:digest]; the tag must name an exact release (major.minor.patch).
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
EXACT_TAG = re.compile(r":\d+\.\d+\.\d+(-[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            found.append([])
        assert found, f"{keyword} before the first FROM"
        found[-1].append((keyword, rest))
    return found


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def assignments(keyword: str, rest: str) -> list[tuple[str, str]]:
    """ENV/ARG as (name, value); an ARG without a default has the value ''."""
    words = shlex.split(rest)
    if keyword == "ENV" and words and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]  # legacy `ENV NAME value`
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words]


def test_base_images_are_pinned() -> None:
    names: set[str] = set()
    for stage in stages():
        words = stage[0][1].split()
        image = next(w for w in words if not w.startswith("--"))
        if image not in names:
            assert "latest" not in image, image
            assert DIGEST.search(image) or EXACT_TAG.search(image), f"{image}: pin an exact version tag or a digest"
        if len(words) >= 3 and words[-2].upper() == "AS":
            names.add(words[-1])


def test_base_python_satisfies_requires_python() -> None:
    requires = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    minimum = tuple(int(p) for p in re.fullmatch(r">=\s*(\d+)\.(\d+)", requires).groups())
    final_image = stages()[-1][0][1].split()[0]
    match = re.search(r"python:(\d+)\.(\d+)\.\d+", final_image)
    assert match, final_image
    assert (int(match[1]), int(match[2])) >= minimum


def test_runs_as_the_non_root_uid_the_chart_expects() -> None:
    final = stages()[-1]
    keywords = [k for k, _ in final]
    users = [rest for k, rest in final if k == "USER"]
    assert users, "the final stage sets no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: use a numeric non-root uid (runAsNonRoot needs one)"
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert last_user < keywords.index("ENTRYPOINT")
    security = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))["podSecurityContext"]
    assert int(uid) == security["runAsUser"]
    if gid:
        assert int(gid) == security["runAsGroup"]


def test_installs_the_project_with_pip_and_runs_loadwise() -> None:
    runs = [shlex.split(rest) for k, rest in instructions() if k == "RUN"]
    installs = [w for w in runs if "pip" in w and "install" in w]
    assert any("--no-cache-dir" in w and "." in w[w.index("install"):] for w in installs), installs
    final = stages()[-1]
    entrypoints = [rest for k, rest in final if k == "ENTRYPOINT"]
    assert len(entrypoints) == 1 and exec_form(entrypoints[0]) == ["loadwise"]


def test_no_secrets_in_layers() -> None:
    for keyword, rest in instructions():
        if keyword in ("ENV", "ARG"):
            for name, value in assignments(keyword, rest):
                assert not (SECRET_NAME.search(name) and value), f"{keyword} {name} bakes a secret into the image"
        if keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            sources = exec_form(rest)[:-1] if rest.startswith("[") else words[:-1]
            for source in sources:
                assert not SECRET_FILE.search(source), f"{keyword} {source}"
                assert not re.match(r"https?://", source), f"{keyword} {source}: remote content is not pinned"


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a match on a parent directory counts."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        cleaned = pattern.lstrip("!").strip("/")
        alternatives = {cleaned, cleaned[3:]} if cleaned.startswith("**/") else {cleaned}
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in alternatives):
            verdict = not negate
    return verdict


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize(
    "path",
    [".git/config", ".venv/bin/python", "runs/20240101T000000Z-browse/run.json", ".env", ".env.production",
     "deploy/.env", "certs/server.pem", "id_rsa", "tests/test_run.py"],
)
def test_dockerignore_keeps_out(path: str, ignore_patterns: list[str]) -> None:
    assert ignored(path, ignore_patterns)


@pytest.mark.parametrize("path", ["pyproject.toml", "README.md", "loadwise/cli/main.py", "reports/templates/report.html.j2", "shapes/closed.py"])
def test_dockerignore_keeps_what_the_install_needs(path: str, ignore_patterns: list[str]) -> None:
    assert not ignored(path, ignore_patterns)
