"""The code's shape, checked with ast (fast, no imports of the package): functions short enough to read in one
screen, few parameters (options travel in the frozen dataclasses), library errors in the library's own words
(the CLI names its flags from ``param``), and no two folders of the project with the same name."""
from __future__ import annotations

import ast
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "latentcodec"
MAX_LINES = 60
MAX_PARAMS = 8
FLAG = re.compile(r"--[a-z]")
# Folders that are names of things (the model weights' folders), not code: their names may repeat.
NAME_ONLY_FOLDERS = ("latentcodec/weights/",)
SKIPPED_FOLDERS = {".git", "__pycache__"}


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _length(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """From the def line (decorators excluded: ``lineno`` is the def's) to the last line of the body."""
    return fn.end_lineno - fn.lineno + 1


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Positional, keyword-only, *args and **kwargs; ``self``/``cls`` not counted."""
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return len(names) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)


def _is_click_command(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated with ``@cli.command``, ``@click.command`` or ``@<group>.command`` (called or not): click hands
    such a function one parameter per option, so its count follows the command line, not the design."""
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Attribute) and target.attr in ("command", "group"):
            return True
    return False


def _strings(node: ast.AST) -> Iterator[str]:
    """Every string literal under ``node``, f-strings' literal parts included."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.value


def _flags_in_raises(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of each string literal with a ``--flag`` passed to an exception constructor that is raised."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            for arg in [*node.exc.args, *(k.value for k in node.exc.keywords)]:
                for text in _strings(arg):
                    if FLAG.search(text):
                        yield node.lineno, text


def shape_offenders(source: str, name: str, errors_checked: bool = True) -> list[str]:
    """The offences in one module's ``source``, one line each, ``name:line: what``."""
    tree = ast.parse(source, filename=name)
    found = []
    for fn in _functions(tree):
        if _length(fn) > MAX_LINES:
            found.append(f"{name}:{fn.lineno}: {fn.name} is {_length(fn)} lines (> {MAX_LINES})")
        if _params(fn) > MAX_PARAMS and not _is_click_command(fn):
            found.append(f"{name}:{fn.lineno}: {fn.name} has {_params(fn)} parameters (> {MAX_PARAMS})")
    if errors_checked:
        for line, text in _flags_in_raises(tree):
            found.append(f"{name}:{line}: error text names a CLI flag: {text!r}")
    return found


def _tracked_folders() -> list[str]:
    """The folders of the git-tracked tree (relative, '/'-separated); a walk of the tree where git is absent."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [f for f in out.decode("utf-8", "surrogateescape").split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for top, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS
                       and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(top, n), ROOT).replace(os.sep, "/") for n in names]
    folders = {"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)}
    return sorted(f for f in folders if not set(f.split("/")) & SKIPPED_FOLDERS)


def duplicate_folders(folders: list[str]) -> list[str]:
    """Folder names that occur more than once, with where; the weights' name-only folders left out."""
    where: dict[str, list[str]] = {}
    for folder in folders:
        if not any(folder.startswith(p) for p in NAME_ONLY_FOLDERS):
            where.setdefault(folder.rsplit("/", 1)[-1], []).append(folder)
    return [f"folder name {n!r} used {len(w)} times: {', '.join(w)}" for n, w in sorted(where.items()) if len(w) > 1]


def _package_offenders() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        errors_checked = not rel.startswith("latentcodec/cli/")
        found += shape_offenders(path.read_text(encoding="utf-8"), rel, errors_checked)
    return found


def test_the_checker_sees_offences() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(58))
    ok = f"@decorated\ndef fits(a, b):\n{body}    return 0\n"  # 60 lines from the def
    too_long = f"def too_long(a, b):\n{body}    x = 1\n    return 0\n"  # 61
    many = "def many(self, a, b, c, d, e, f, g, *h, **i):\n    pass\n"
    command = "@cli.command()\ndef encode(a, b, c, d, e, f, g, h, i):\n    pass\n"
    flag = "def f():\n    raise LatentCodecError(f'bad {x}; use --force to go on', param='force')\n"
    plain = "def g():\n    raise ValueError('a negative count: -1 -- not allowed')\n"
    found = shape_offenders(ok + too_long + many + command + flag + plain, "m.py")
    assert len(found) == 3, found
    assert "too_long is 61 lines" in found[0] and "many has 9 parameters" in found[1] and "--force" in found[2]
    assert shape_offenders(flag, "cli.py", errors_checked=False) == []
    assert duplicate_folders(["a", "a/b", "c", "c/b", "latentcodec/weights/x", "latentcodec/weights/y/x"]) == [
        "folder name 'b' used 2 times: a/b, c/b"]


def test_package_shape() -> None:
    found = _package_offenders() + duplicate_folders(_tracked_folders())
    for line in found:
        print(line)
    assert not found, f"{len(found)} offences:\n" + "\n".join(found)
