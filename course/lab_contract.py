"""Given code exists once: a starter differs from its solution only where the learner writes.

A *TODO region* is a function or method of ``starter.py`` whose body, after an optional
docstring, is one ``raise NotImplementedError("TODO ...")``. The body of that function is
the learner's; in ``solution.py`` the same function's body is the reference. Everything
else (imports, constants, classes, other functions and their docstrings, the TODO
functions' signatures and decorators, the ``__main__`` block) is given code and must be
identical in the two files, so a fix to it cannot land in one copy and not the other.
Only the module docstring may differ: the starter's says what to do.

The comparison is on ``ast.dump`` of both trees with the TODO bodies and the module
docstring removed, so formatting and comments do not count.
"""
from __future__ import annotations

import ast
import copy
import io
import re
import tokenize
from pathlib import Path

NO_TODO = 'starter.py has no TODO region (a function whose body is raise NotImplementedError("TODO ..."))'


def _is_todo_body(body: list[ast.stmt]) -> bool:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise):
        return False
    exc = body[0].exc
    if not (isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name) and exc.func.id == "NotImplementedError"):
        return False
    return bool(exc.args) and isinstance(exc.args[0], ast.Constant) and isinstance(exc.args[0].value, str) \
        and exc.args[0].value.startswith("TODO")


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            yield from _functions(node, prefix)


def todo_regions(starter: ast.Module) -> set[str]:
    """Qualified names (``Class.method``) of the starter's TODO functions."""
    return {name for name, node in _functions(starter) if _is_todo_body(node.body)}


def _strip(tree: ast.Module, regions: set[str]) -> ast.Module:
    tree = copy.deepcopy(tree)
    for name, node in _functions(tree):
        if name in regions:
            node.body = [ast.Pass()]
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant) \
            and isinstance(tree.body[0].value.value, str):
        tree.body = tree.body[1:]
    return tree


def _name(node: ast.stmt) -> str:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.If):
        return f"if {ast.unparse(node.test)}"
    if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return ast.unparse(node).splitlines()[0][:80]
    return f"{type(node).__name__.lower()} statement"


def _parse(path: Path) -> tuple[ast.Module | None, str | None]:
    try:
        return ast.parse(path.read_text(), filename=str(path)), None
    except SyntaxError as exc:
        return None, f"{path.name} does not parse: line {exc.lineno}: {exc.msg}"


def given_code_problems(lab_dir: Path | str) -> list[str]:
    """Why ``lab_dir``'s starter and solution break "given code exists once" (empty: they don't).

    Reports the first differing top-level statement only: one drift usually shifts the rest.
    """
    lab_dir = Path(lab_dir)
    missing = [f"missing {f}" for f in ("starter.py", "solution.py") if not (lab_dir / f).is_file()]
    if missing:
        return missing
    starter, err_starter = _parse(lab_dir / "starter.py")
    solution, err_solution = _parse(lab_dir / "solution.py")
    if err_starter or err_solution:
        return [e for e in (err_starter, err_solution) if e]
    regions = todo_regions(starter)
    if not regions:
        return [NO_TODO]
    a, b = _strip(starter, regions), _strip(solution, regions)
    for sa, sb in zip(a.body, b.body):
        if ast.dump(sa) != ast.dump(sb):
            return [f"starter.py and solution.py differ at `{_name(sa)}` (starter line {sa.lineno}, "
                    f"solution line {sb.lineno}): given code must exist once"]
    if len(a.body) > len(b.body):
        extra = a.body[len(b.body)]
        return [f"starter.py has `{_name(extra)}` (line {extra.lineno}), which solution.py lacks"]
    if len(b.body) > len(a.body):
        extra = b.body[len(a.body)]
        return [f"solution.py has `{_name(extra)}` (line {extra.lineno}), which starter.py lacks"]
    return []


def export_head(dest: Path | str, root: Path | str | None = None) -> Path:
    """Write the files committed at ``HEAD`` of ``root`` (default: this repo) into ``dest``.

    The maintainer checks judge this copy, never the work tree: a learner's finished
    starter is theirs, and only the committed one must be unfinished. ``upstream/`` (not
    committed, fetched by ``tools/fetch_upstream.py``) is linked in when the repo has it.
    """
    import io
    import subprocess
    import tarfile

    from course.labkit import REPO_ROOT

    root = Path(root or REPO_ROOT)
    dest = Path(dest)
    proc = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", "HEAD"], capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the maintainer checks judge the committed files and so need a git checkout with a "
                           f"commit; `git archive HEAD` in {root} said: {proc.stderr.decode(errors='replace').strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(dest)
    if (root / "upstream").is_dir() and not (dest / "upstream").exists():
        (dest / "upstream").symlink_to((root / "upstream").resolve())
    return dest


# ---------------------------------------------------------------------------------------
# A lab a learner has to think through: the stub names the task, the README holds the spec
# and layered hints, and neither hands over a line of the solution.

STUB_FORM = re.compile(r"TODO \d+[a-z]?: .+\(README tasks? \d+[a-z]?(?: and \d+[a-z]?)?\)$")
# What makes a message "carry code": a call with an argument, an assignment, an index, a
# comparison, or a backticked expression with any of those.
CODE_SIGNS = (re.compile(r"\w\(\s*[\w'\"\[]"), re.compile(r"(?<![=!<>])=(?!=)"), re.compile(r"\w\[[^\]]"),
              re.compile(r"[<>]=?|==|!="), re.compile(r"`[^`]*[()\[\]=][^`]*`"),
              re.compile(r"//|\*\*|[-+*/%]\s*\("))
MIN_LEAK_CHARS = 12  # a normalised solution line shorter than this is too generic to count


def stub_messages(starter: ast.Module) -> dict[str, str]:
    """{qualified function name: its NotImplementedError message} for every TODO region."""
    out = {}
    for name, node in _functions(starter):
        if _is_todo_body(node.body):
            body = node.body[1:] if isinstance(node.body[0], ast.Expr) else node.body
            out[name] = body[0].exc.args[0].value
    return out


def stub_problems(lab_dir: Path | str) -> list[str]:
    """Stub messages that do not read 'TODO N: <task> (README task N)' or carry code."""
    starter, err = _parse(Path(lab_dir) / "starter.py")
    if starter is None:
        return [err]
    problems = []
    for name, msg in stub_messages(starter).items():
        if not STUB_FORM.match(msg):
            problems.append(f"{name}: a stub should read 'TODO N: <the task> (README task N)', got {msg!r}")
        elif carries_code(msg):
            problems.append(f"{name}: the stub message carries code: {msg!r}")
    return problems


def carries_code(message: str) -> bool:
    task = message.split("(README task")[0]
    return any(p.search(task) for p in CODE_SIGNS)


def _normalise(line: str) -> str:
    """A line with every name replaced by ``_`` and all whitespace gone, so renaming a
    variable or re-spacing a hint does not hide a copied line."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.sub(r"\s+", "", re.sub(r"[A-Za-z_]\w*", "_", line))
    keep = (tokenize.OP, tokenize.NUMBER, tokenize.STRING)
    return "".join("_" if t.type == tokenize.NAME else t.string for t in toks if t.type == tokenize.NAME or t.type in keep)


def solution_lines(lab_dir: Path | str) -> set[str]:
    """Normalised code lines of the solution's bodies of the starter's TODO functions."""
    lab_dir = Path(lab_dir)
    starter, _ = _parse(lab_dir / "starter.py")
    solution, _ = _parse(lab_dir / "solution.py")
    if starter is None or solution is None:
        return set()
    regions = todo_regions(starter)
    text = (lab_dir / "solution.py").read_text().splitlines()
    out = set()
    for name, node in _functions(solution):
        if name not in regions:
            continue
        body = node.body[1:] if node.body and isinstance(node.body[0], ast.Expr) \
            and isinstance(node.body[0].value, ast.Constant) else node.body
        for stmt in body:
            for line in text[stmt.lineno - 1: stmt.end_lineno]:
                if line.strip().startswith(("#", '"', "'")):
                    continue
                norm = _normalise(line)
                if len(norm) >= MIN_LEAK_CHARS:
                    out.add(norm)
    return out


def hint_leaks(lab_dir: Path | str) -> list[str]:
    """Places where a stub message or a README line reproduces a solution line."""
    lab_dir = Path(lab_dir)
    lines = solution_lines(lab_dir)
    starter, _ = _parse(lab_dir / "starter.py")
    texts = [(f"starter stub {n}", m) for n, m in (stub_messages(starter) if starter else {}).items()]
    readme = lab_dir / "README.md"
    if readme.is_file():
        texts += [(f"README.md line {i}", ln) for i, ln in enumerate(readme.read_text().splitlines(), 1)]
    leaks = []
    for where, text in texts:
        for piece in re.split(r"[`\n]", text):
            if len(_normalise(piece)) >= MIN_LEAK_CHARS and _normalise(piece) in lines:
                leaks.append(f"{where} reproduces a solution line: {piece.strip()!r}")
    return leaks
