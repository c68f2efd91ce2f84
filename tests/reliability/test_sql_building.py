"""SQL is built from parameters and validated, quoted identifiers only.

A lint over ``warehouse/`` and ``pipelines/``: every f-string or ``str.format`` that builds SQL
may interpolate only what ``quote_identifier`` / ``quote_qualified`` (or psycopg's
``sql.Identifier``) returned, directly or through a local variable, or text the module fixes
itself. Then the quoting itself is fed hostile identifiers, and the loader a hostile property id.
"""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest

from connectors.reports import ACQUISITION
from tests.reliability.conftest import Tally
from tests.warehouse.spool import load_record
from warehouse.connection import quote_identifier, quote_qualified

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("warehouse", "pipelines")
QUOTING = {"quote_identifier", "quote_qualified", "Identifier", "Literal"}
# Text shaped like a statement, not prose that happens to say "from".
SQL_SHAPES = re.compile(
    r"\bselect\b[\s\S]*\bfrom\b|\bdelete\s+from\b|\binsert\s+into\b|\bcopy\s*\(|"
    r"\b(create|drop|alter)\s+(or\s+replace\s+)?(table|schema|role|view)\b|\bdescribe\b|"
    r"\bupdate\s+\S+\s+set\b|\bgrant\b|\brevoke\b|\bcomment\s+on\b",
    re.IGNORECASE,
)
EXECUTING = {"execute", "executemany", "sql", "query"}
# Reviewed interpolations the lint cannot follow, with why they are safe.
REVIEWED = {
    ("warehouse/publish_postgres.py", "pg_type"): "a value of the module's fixed _PG_TYPES map",
}
HOSTILE_IDENTIFIERS = [
    'x"; drop table raw.ga_loads; --',
    "ga_loads; delete from raw.ga_loads",
    "Campaign",
    "1st",
    "naïve",
    "a b",
    "",
    "x'--",
    "tab\tle",
]


def _mentions_quoting(node: ast.AST) -> bool:
    for inner in ast.walk(node):
        name = getattr(inner, "attr", None) or getattr(inner, "id", None)
        if name in QUOTING:
            return True
    return False


def _is_constant_text(node: ast.AST) -> bool:
    """A literal, or a conditional choosing between literals."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.IfExp):
        return _is_constant_text(node.body) and _is_constant_text(node.orelse)
    if isinstance(node, ast.JoinedStr):
        return all(not isinstance(v, ast.FormattedValue) for v in node.values)
    return False


def _param_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = node.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


class _SqlBuilding(ast.NodeVisitor):
    """Collect interpolations into SQL text that are not known to be safe.

    A name is safe when bound to quoted identifiers or fixed text in its function, or, for a
    parameter, when every call in the module passes something safe for it.
    """

    def __init__(self, path: Path, tree: ast.Module, constants: set[str]) -> None:
        self.path = path
        self.constants = constants
        self.safe: set[str] = set()
        self.problems: list[str] = []
        self.functions = {
            n.name: n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        self.local_safe = {name: self._locals(fn, set()) for name, fn in self.functions.items()}
        self.param_safe = self._parameters(tree)

    def _locals(self, fn: ast.AST, start: set[str]) -> set[str]:
        safe = set(start)
        for _ in range(3):  # names built from names built from quoted names
            for inner in ast.walk(fn):
                if isinstance(inner, ast.Assign | ast.AnnAssign) and inner.value is not None:
                    targets = inner.targets if isinstance(inner, ast.Assign) else [inner.target]
                    if self._safe(inner.value, safe):
                        safe |= {t.id for t in targets if isinstance(t, ast.Name)}
                loop = isinstance(inner, ast.For | ast.comprehension)
                if loop and isinstance(inner.target, ast.Name) and self._safe(inner.iter, safe):
                    safe.add(inner.target.id)
        return safe

    def _parameters(self, tree: ast.Module) -> dict[str, set[str]]:
        passed: dict[str, dict[str, list[bool]]] = {name: {} for name in self.functions}
        for caller in self.functions.values():
            safe = self.local_safe[caller.name]
            for call in ast.walk(caller):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
                    continue
                callee = self.functions.get(call.func.id)
                if callee is None:
                    continue
                params = _param_names(callee)
                pairs = list(zip(params, call.args, strict=False))
                pairs += [(k.arg, k.value) for k in call.keywords if k.arg]
                for param, value in pairs:
                    passed[callee.name].setdefault(param, []).append(self._safe(value, safe))
        return {
            name: {param for param, verdicts in params.items() if verdicts and all(verdicts)}
            for name, params in passed.items()
        }

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        outer = self.safe
        self.safe = self._locals(node, outer | self.param_safe.get(node.name, set()))
        self.generic_visit(node)
        self.safe = outer

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def _safe(self, node: ast.AST, safe: set[str] | None = None) -> bool:
        safe = self.safe if safe is None else safe
        if _is_constant_text(node):
            return True
        if isinstance(node, ast.Name):
            return node.id in safe or node.id in self.constants
        if isinstance(node, ast.Call):
            func = node.func
            if _mentions_quoting(func) or (
                isinstance(func, ast.Name) and func.id == "map" and _mentions_quoting(node.args[0])
            ):
                return True
            if isinstance(func, ast.Attribute) and func.attr == "join":
                return _is_constant_text(func.value) and all(self._safe(a, safe) for a in node.args)
            return False
        if isinstance(node, ast.JoinedStr):
            return all(
                self._safe(v.value, safe) for v in node.values if isinstance(v, ast.FormattedValue)
            )
        if isinstance(node, ast.IfExp):
            return self._safe(node.body, safe) and self._safe(node.orelse, safe)
        if isinstance(node, ast.BoolOp):
            return all(self._safe(v, safe) for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._safe(node.left, safe) and self._safe(node.right, safe)
        if isinstance(node, ast.List | ast.Tuple | ast.Starred):
            items = node.elts if not isinstance(node, ast.Starred) else [node.value]
            return all(self._safe(item, safe) for item in items)
        if isinstance(node, ast.Subscript):
            return self._safe(node.value, safe)
        if isinstance(node, ast.ListComp | ast.GeneratorExp):
            inner = set(safe)
            for generator in node.generators:
                if self._safe(generator.iter, inner):
                    inner |= {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}
            return self._safe(node.elt, inner)
        return False

    def _report(self, node: ast.AST, value: ast.AST, how: str) -> None:
        where = self.path.relative_to(REPO).as_posix()
        problem = f"{where}:{node.lineno}: {ast.unparse(value)} {how} SQL"
        if (where, ast.unparse(value)) not in REVIEWED and problem not in self.problems:
            self.problems.append(problem)

    def _check_fstring(self, node: ast.JoinedStr) -> None:
        for value in node.values:
            if isinstance(value, ast.FormattedValue) and not self._safe(value.value):
                self._report(node, value.value, "interpolated into")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        if SQL_SHAPES.search(literal):
            self._check_fstring(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in EXECUTING and node.args:
            for inner in _text_parts(node.args[0]):
                self._check_fstring(inner)
        if name == "SQL" and node.args and not self._safe(node.args[0]):
            self._report(node, node.args[0], "made into psycopg")
        if name == "format" and isinstance(func, ast.Attribute):
            receiver = ast.unparse(func.value)
            psycopg = receiver.startswith("sql.SQL(")  # composes Identifier / Literal safely
            sql_like = re.search("sql|template", receiver, re.IGNORECASE) or (
                isinstance(func.value, ast.Constant) and SQL_SHAPES.search(str(func.value.value))
            )
            if not psycopg and sql_like:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    if not self._safe(arg):
                        self._report(node, arg, "formatted into")
        self.generic_visit(node)


def _text_parts(node: ast.AST) -> list[ast.JoinedStr]:
    """The f-strings a statement argument is concatenated from (not those inside calls)."""
    if isinstance(node, ast.JoinedStr):
        return [node]
    if isinstance(node, ast.BinOp):
        return _text_parts(node.left) + _text_parts(node.right)
    return []


def _module_constants(tree: ast.Module) -> set[str]:
    """Upper-case module names bound to literal text: fixed by the code, not by data."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and _is_constant_text(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()}
    return names


def sql_problems(path: Path, *, shown_as: Path | None = None) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    visitor = _SqlBuilding(shown_as or path, tree, _module_constants(tree))
    visitor.visit(tree)
    return visitor.problems


def test_the_lint_catches_a_value_pasted_into_sql(tmp_path: Path) -> None:
    """The lint itself can fail: values and unquoted names are caught, quoted names are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def bad(con, month, table):\n"
        "    con.execute(f'delete from raw.t where month = {month}')\n"
        "    con.execute('select * from {t}'.format(t=table))\n"
        "def good(con, name):\n"
        "    table = quote_qualified(name)\n"
        "    con.execute(f'select count(*) from {table} where x = ?', [1])\n"
        "    con.execute(f'select {quote_identifier(name)} from t')\n"
    )
    problems = [p.split(": ", 1)[1] for p in sql_problems(sample, shown_as=REPO / "sample.py")]
    assert problems == ["month interpolated into SQL", "table formatted into SQL"]


def test_sql_in_the_product_uses_parameters_and_quoted_identifiers() -> None:
    files = sorted(p for folder in SCANNED for p in (REPO / folder).rglob("*.py"))
    assert len(files) > 10
    problems = [problem for path in files for problem in sql_problems(path)]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", HOSTILE_IDENTIFIERS)
def test_hostile_identifiers_are_refused(name: str, tally: Tally) -> None:
    tally.bad_input("SQL identifier")
    with pytest.raises(ValueError, match="not a safe SQL identifier"):
        quote_identifier(name)
    with pytest.raises(ValueError, match="not a safe SQL identifier"):
        quote_qualified(f"raw.{name}")


@pytest.mark.parametrize(
    "property_id", ["1'; drop table raw.ga_loads; --", "G-1A2B3C", "١٢٣", "12 34", ""]
)
def test_hostile_property_id_never_reaches_the_warehouse(property_id: str, tally: Tally) -> None:
    """The loader refuses an id that is not ASCII digits before any SQL runs."""
    tally.bad_input("property id at the loader")
    with pytest.raises(ValueError, match="property_id must be the numeric GA4 property id"):
        load_record(date(2024, 1, 1), report=ACQUISITION, property_id=property_id)
