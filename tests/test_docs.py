"""The docs' commands and links must work.

Every `loadwise ...` line in a shell block of README.md and docs/*.md is parsed by loadwise's
own parser, split the way `loadwise` itself splits it (Locust's options go to Locust under
`run` and `worker`), so a renamed or removed option fails here instead of in a reader's
terminal. Every relative link must point to a file (and heading) that exists. Parsing only:
nothing runs, so this stays in the fast suite.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadwise.cli import run as run_cli
from loadwise.cli.main import build_parser
from loadwise.errors import LoadwiseError

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"sh", "shell", "bash", "console", "zsh"}
PROGRAMS = ("loadwise", ".venv/bin/loadwise")
# A command line that cannot carry real values (none does yet) says so with this in a comment,
# and why; it is then left out rather than parsed.
SKIP_MARK = "docs-test: skip"
CONTROL = {"|", "||", "&&", ";", "&", "|&"}  # ends a command; what follows may be another
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}: {self.text}"


def _scan(page: Path) -> list[tuple[int, str, str | None]]:
    """A Markdown page's lines but its fences: (line number, text, the enclosing block's
    language: "" for a block without one, None outside any block)."""
    out, fence, lang = [], None, None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, lang = match["fence"], match["lang"].lower()
        elif fence is not None and match and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence) \
                and not match["lang"]:  # fmt: skip
            fence, lang = None, None
        else:
            out.append((number, line, lang))
    return out


def _blocks(page: Path) -> list[tuple[str, int, list[str]]]:
    """Fenced blocks of a page: (language, number of the first line inside, lines)."""
    blocks: list[tuple[str, int, list[str]]] = []
    previous = None
    for number, line, lang in _scan(page):
        if lang is None:
            previous = None
            continue
        if previous is None or number != previous + 1:
            blocks.append((lang, number, []))
        blocks[-1][2].append(line)
        previous = number
    return blocks


def _logical_lines(first: int, lines: list[str]) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined and a `$ ` prompt dropped: (line number, text)."""
    out, pending, start = [], "", first
    for number, line in enumerate(lines, first):
        if not pending:
            start = number
        stripped = line.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        out.append((start, pending + stripped))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _commands(pages: list[Path] = PAGES) -> list[Command]:
    found = []
    for page in pages:
        for lang, first, lines in _blocks(page):
            if lang and lang not in SHELL_LANGUAGES:
                continue
            for number, text in _logical_lines(first, lines):
                if text.startswith(tuple(f"{p} " for p in PROGRAMS)) and SKIP_MARK not in text:
                    found.append(Command(page, number, text))
    return found


def _without_comment(text: str) -> str:
    """The line up to its comment: a `#` that starts a word outside quotes, as the shell reads
    it (shlex would also cut `http://host/#part` at its `#`)."""
    quote, escaped = None, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def _tokens(text: str) -> list[str]:
    """The words of a shell line as the shell splits them: quotes removed, a trailing comment
    dropped, operators (`|`, `&&`, `<` ...) as words of their own."""
    lexer = shlex.shlex(_without_comment(text), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def _invocations(text: str) -> list[list[str]]:
    """Each loadwise command on the line (a pipeline or `&&` may hold several), as argv.
    Output redirections are the shell's and dropped; an input redirection in a loadwise
    command is almost always an unquoted placeholder (`runs/<run_id>`), so it is kept and fails."""
    commands, current = [], []
    for token in [*_tokens(text), ";"]:
        if token not in CONTROL:
            current.append(token)
            continue
        while current and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", current[0]):  # VAR=value loadwise ...
            current.pop(0)
        if current and current[0] in PROGRAMS:
            argv, i = [], 1
            while i < len(current):
                if current[i] in (">", ">>"):
                    i += 2
                    continue
                argv.append(current[i])
                i += 1
            commands.append(argv)
        current = []
    return commands


PARSER = build_parser()


def parse_like_the_cli(argv: list[str]) -> None:
    """What `loadwise.cli.main.main` does before it calls a command's handler: Locust's options
    split off for `run` and `worker` (and the ones loadwise refuses refused), the rest parsed."""
    locust_args: list[str] = []
    if argv[:1] and argv[0] in run_cli.PASS_THROUGH_COMMANDS:
        ours, locust_args = run_cli.split_locust_args(argv[1:], argv[0])
        argv = [argv[0], *ours]
    args = PARSER.parse_args(argv)
    if args.command is None:
        raise AssertionError("no command: `loadwise` alone prints its help and exits 2")
    run_cli.check_locust_args(locust_args)


COMMANDS = _commands()


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_documented_command_parses(command: Command) -> None:
    invocations = _invocations(command.text)
    assert invocations, f"{command}: no loadwise command found on the line"
    for argv in invocations:
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                parse_like_the_cli(argv)
        except SystemExit as exc:
            if exc.code == 0 and ("-h" in argv or "--help" in argv):
                continue
            pytest.fail(f"{command}\n  loadwise refuses it (exit {exc.code}): {errors.getvalue().strip()}")
        except LoadwiseError as exc:
            pytest.fail(f"{command}\n  loadwise refuses it: {exc}")


def test_docs_show_commands() -> None:
    """The extraction itself works: the README and the docs show commands (a parser that found
    none would pass every check above by checking nothing)."""
    pages = {c.page for c in COMMANDS}
    assert REPO / "README.md" in pages
    assert len(pages) >= 10 and len(COMMANDS) >= 40, f"only {len(COMMANDS)} commands on {len(pages)} pages"


def test_the_checker_catches_a_bad_command() -> None:
    """A misspelt option, a placeholder and a refused Locust option each fail the parse."""
    for text in ("loadwise report RUN --treshold 'p95<1s'", "loadwise report runs/<run_id>",
                 "loadwise run browse --master"):  # fmt: skip
        with pytest.raises((SystemExit, LoadwiseError)), contextlib.redirect_stderr(io.StringIO()):
            for argv in _invocations(text):
                parse_like_the_cli(argv)
    assert _invocations("loadwise k8s follow shop && loadwise k8s fetch shop --out runs/ | tee out  # both") == [
        ["k8s", "follow", "shop"], ["k8s", "fetch", "shop", "--out", "runs/"]]
    assert _invocations("loadwise run browse --host http://h/#x --tag 'a=#b' > out.txt # why") == [
        ["run", "browse", "--host", "http://h/#x", "--tag", "a=#b"]]


def test_commands_are_found_as_a_shell_would_read_them(tmp_path: Path) -> None:
    """Shell blocks only; continuations joined, prompts dropped; a marked line left out."""
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "# t", "```sh", "$ loadwise report runs/a \\", "    --json", "make demo",
        f"loadwise gate runs/a   # {SKIP_MARK}: a cluster's name", "```",
        "```python", "loadwise = 1", "```", "```", "loadwise history list", "```",
    ]), encoding="utf-8")  # fmt: skip
    assert [(c.line, c.text) for c in _commands([page])] == [(3, "loadwise report runs/a --json"), (12, "loadwise history list")]


# -- links ------------------------------------------------------------------------------

INLINE_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _prose(page: Path) -> list[tuple[int, str]]:
    """A page's lines outside fenced blocks, inline code spans blanked (links in code are text)."""
    return [(number, re.sub(r"(`+).*?\1", "", line)) for number, line, lang in _scan(page) if lang is None]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces as hyphens, -1, -2 for repeats."""
    seen: dict[str, int] = {}
    anchors = set()
    for _, line, lang in _scan(page):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line) if lang is None else None
        if not match:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match[1]).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links() -> list[tuple[Path, int, str]]:
    found = []
    for page in PAGES:
        for number, line in _prose(page):
            targets = INLINE_LINK.findall(line) + ([m[1]] if (m := REFERENCE.match(line)) else [])
            found += [(page, number, t) for t in targets if not SCHEME.match(t)]
    return found


def test_relative_links_point_to_existing_files() -> None:
    broken = []
    for page, number, target in _links():
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(REPO)}:{number}: {target}"
        if not resolved.exists():
            broken.append(f"{where} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{where} (no such heading in {resolved.name})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme_or_architecture() -> None:
    """A page nobody links to is a page nobody reads."""
    linked = {(page.parent / target.partition("#")[0]).resolve() for page, _, target in _links()
              if page.name in ("README.md", "architecture.md")}  # fmt: skip
    orphans = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not orphans, f"docs pages linked from neither README.md nor docs/architecture.md: {orphans}"


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: p.name)
def test_docs_page_opens_with_a_command(page: Path) -> None:
    """Each page starts (after its title) with something to run: an example is read first."""
    lines = [line for line in page.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("# "), f"{page.name}: no title"
    match = FENCE.match(lines[1])
    assert match and match["lang"] in SHELL_LANGUAGES, f"{page.name}: the title is not followed by a shell block"
