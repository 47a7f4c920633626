"""Which columns a statement filters, joins, sorts and groups on, per table, read with
PostgreSQL's own grammar (pglast). Pure: SQL text in, `TableUsage` out; the catalog (which
table has which column) is passed in to resolve unqualified names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, BoolExprType
from pglast.parser import scan
from pglast.stream import maybe_double_quote_name as quote

from loadwise.errors import LoadwiseError

EQUALITY_OPS = {"="}
RANGE_OPS = {"<", ">", "<=", ">="}


class SqlUsageError(LoadwiseError, ValueError):
    """A statement the advisor cannot plan (not one SELECT, INSERT, UPDATE or DELETE, or unparsable)."""


def qualified(schema: str, name: str) -> str:
    """A table's schema-qualified name as SQL, each part quoted only where PostgreSQL needs it
    (`public.posts`, `"Bar"."Foo"`): how the PostgreSQL advisor names tables everywhere."""
    return f"{quote(schema)}.{quote(name)}"


PLANNABLE = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)

# pg_stat_statements replaces a typed literal's string by a parameter and keeps its type name in
# front (`timestamptz '2024-06-01'` becomes `timestamptz $1`), which PostgreSQL's grammar does not
# accept: a typed literal takes a string constant only. As a cast (`$1::timestamptz`) it plans the same.
# The built-in names, as the scanner's tokens spell them (lower case), longest first.
_TYPE_NAMES = sorted((tuple(name.split()) for name in (
    "timestamp with time zone", "timestamp without time zone", "time with time zone", "time without time zone",
    "double precision", "character varying", "timestamp", "timestamptz", "timetz", "time", "date", "interval",
    "numeric", "decimal", "bigint", "smallint", "integer", "int", "int2", "int4", "int8", "real", "float4", "float8",
    "boolean", "bool", "uuid", "json", "jsonb", "text", "varchar", "bytea", "inet", "cidr", "macaddr", "money",
)), key=len, reverse=True)  # fmt: skip


def plannable(sql: str) -> str:
    """`sql` with each `type $n` pg_stat_statements wrote for a typed literal as `$n::type`.

    Read with PostgreSQL's scanner (pglast), so only a type name's tokens right before a
    parameter token are rewritten: the same words in a string constant, a comment or a
    dollar-quoted string are text, and `pg_catalog.date $1` (qualified) is left as written.
    Text that does not scan is returned as it is: parsing it later says what is wrong."""
    try:
        tokens = scan(sql)
    except Exception:  # pglast.parser.ParseError: an unterminated string or comment
        return sql
    words = [sql[t.start : t.end + 1].lower() for t in tokens]
    out: list[str] = []
    done = 0
    for at, token in enumerate(tokens):
        if token.name != "PARAM":
            continue
        for name in _TYPE_NAMES:
            first = at - len(name)
            if first >= 0 and tuple(words[first:at]) == name:
                if first > 0 and tokens[first - 1].name == "ASCII_46":  # `schema.type`: not a built-in name
                    break
                out += [sql[done : tokens[first].start], f"{words[at]}::{' '.join(name)}"]
                done = token.end + 1
                break
    return "".join(out) + sql[done:]


def single_statement(sql: str) -> Any:
    """The one SELECT, INSERT, UPDATE or DELETE that `sql` holds, or SqlUsageError saying why not.

    Statement text is outside input (a run's db_statements.json, pg_stat_statements): the
    advisor sends PostgreSQL nothing that has not passed here, so text with a second
    statement after a `;` (a COMMIT ending the read-only transaction, a DROP) never runs.
    """
    try:
        statements = parse_sql(sql)
    except Exception as exc:  # pglast.parser.ParseError and friends
        raise SqlUsageError(f"cannot parse: {exc}") from exc
    if len(statements) != 1:
        raise SqlUsageError(f"{len(statements)} statements in one entry; only a single SELECT, INSERT, UPDATE "
                            "or DELETE is planned")  # fmt: skip
    stmt = statements[0].stmt
    if not isinstance(stmt, PLANNABLE):
        kind = type(stmt).__name__.removesuffix("Stmt").upper()
        raise SqlUsageError(f"a {kind} statement is never planned; only SELECT, INSERT, UPDATE or DELETE")
    if isinstance(stmt, ast.SelectStmt) and stmt.intoClause is not None:
        raise SqlUsageError("SELECT INTO creates a table; it is never planned")
    return stmt


@dataclass
class TableUsage:
    table: str
    equality: list[str] = field(default_factory=list)
    range: list[str] = field(default_factory=list)
    join: list[str] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    group: list[str] = field(default_factory=list)

    def add(self, kind: str, column: str) -> None:
        bucket = getattr(self, kind)
        if column not in bucket:
            bucket.append(column)

    @property
    def empty(self) -> bool:
        return not (self.equality or self.range or self.join or self.sort or self.group)


def _strings(fields: Any) -> list[str]:
    return [f.sval for f in fields if isinstance(f, ast.String)]


Derived = dict[str, dict[str, tuple[str, str]]]  # CTE or view name -> its output column -> (table, column)


class _Scope:
    """Tables visible in one SELECT/UPDATE/DELETE: alias or name -> table. A CTE or a view in
    FROM (`derived`) is read through to the table columns it passes on unchanged, as the
    planner does when it inlines it; whether an index on them pays is the planner's call."""

    def __init__(self, catalog: dict[str, set[str]], derived: Derived | None = None, visible: dict[str, str] | None = None):
        self.catalog = catalog
        self.derived = derived or {}
        self.visible = visible  # a bare table name -> its catalog key (the search path's first); None: the name is the key
        self.tables: dict[str, str] = {}
        self.through: Derived = {}  # alias in FROM -> the CTE's or view's column mapping
        self.opaque = False  # a subquery in FROM: its columns resolve to nothing here

    def add_range(self, node: Any) -> None:
        if isinstance(node, ast.RangeVar):
            name = node.relname
            alias = node.alias.aliasname if node.alias else name
            if node.schemaname is None and name in self.derived:
                self.through[alias] = self.derived[name]
                return
            if self.visible is None:
                key = name
            else:
                key = qualified(node.schemaname, name) if node.schemaname else self.visible.get(name, name)
            self.tables[alias] = key
            self.tables.setdefault(name, key)
        elif isinstance(node, ast.JoinExpr):
            self.add_range(node.larg)
            self.add_range(node.rarg)
        elif isinstance(node, ast.RangeSubselect):
            self.opaque = True

    def columns(self) -> frozenset[str]:
        """Every column of the relations in scope (as the catalog knows them)."""
        real = {c for t in set(self.tables.values()) for c in self.catalog.get(t, set())}
        return frozenset(real | {c for mapping in self.through.values() for c in mapping})

    def resolve(self, ref: Any) -> tuple[str, str] | None:
        if not isinstance(ref, ast.ColumnRef):
            return None
        names = _strings(ref.fields)
        if len(names) >= 2:
            if names[-2] in self.through:
                return self.through[names[-2]].get(names[-1])
            table = self.tables.get(names[-2])
            return (table, names[-1]) if table else None
        if len(names) == 1:
            owners = {(t, names[0]) for t in set(self.tables.values()) if names[0] in self.catalog.get(t, set())}
            owners |= {m[names[0]] for m in self.through.values() if names[0] in m}
            if len(owners) == 1:
                return owners.pop()
            if len(set(self.tables.values())) == 1 and not self.through and not self.opaque:
                return next(iter(self.tables.values())), names[0]
        return None

    def passed_on(self, select: Any) -> dict[str, tuple[str, str]]:
        """What a SELECT over this scope passes on: output column -> (table, column), for the
        outputs that are a table's column unchanged (`*`, `t.*`, `col`, `col AS name`)."""
        out: dict[str, tuple[str, str]] = {}
        for target in select.targetList or ():
            val = target.val
            if isinstance(val, ast.ColumnRef) and isinstance(val.fields[-1], ast.A_Star):
                qualifier = _strings(val.fields[:-1])
                aliases = qualifier[-1:] or list(self.tables) + list(self.through)
                for alias in aliases:
                    if alias in self.through:
                        out.update({k: v for k, v in self.through[alias].items() if k not in out})
                    elif alias in self.tables:
                        table = self.tables[alias]
                        out.update({c: (table, c) for c in self.catalog.get(table, set()) if c not in out})
                continue
            col = self.resolve(val)
            if col:
                out[target.name or col[1]] = col
        return out


def derived_columns(sql: str, catalog: dict[str, set[str]], derived: Derived | None = None,
                    visible: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:  # fmt: skip
    """The columns a view's defining SELECT passes on unchanged (see `_Scope.passed_on`)."""
    stmt = parse_sql(sql)[0].stmt
    if not isinstance(stmt, ast.SelectStmt) or stmt.op or stmt.withClause is not None:
        return {}
    scope = _Scope(catalog, derived, visible)
    for item in stmt.fromClause or ():
        scope.add_range(item)
    return scope.passed_on(stmt)


def _predicates(node: Any, scope: _Scope, usage: dict[str, TableUsage]) -> None:
    if node is None:
        return
    if isinstance(node, ast.BoolExpr):
        if node.boolop == BoolExprType.AND_EXPR:
            for arg in node.args:
                _predicates(arg, scope, usage)
        return  # OR and NOT: an index rarely serves them as written
    if isinstance(node, ast.NullTest):
        col = scope.resolve(node.arg)
        if col:
            usage.setdefault(col[0], TableUsage(col[0])).add("equality", col[1])
        return
    if not isinstance(node, ast.A_Expr):
        return
    op = _strings(node.name)[0] if node.name else ""
    left, right = scope.resolve(node.lexpr), scope.resolve(node.rexpr) if not isinstance(node.rexpr, tuple) else None
    if node.kind == A_Expr_Kind.AEXPR_OP and left and right and left[0] != right[0] and op in EQUALITY_OPS:
        for table, column in (left, right):
            usage.setdefault(table, TableUsage(table)).add("join", column)
        return
    col = left or right
    if col is None:
        return
    kind = None
    if node.kind == A_Expr_Kind.AEXPR_OP and op in EQUALITY_OPS:
        kind = "equality"
    elif node.kind == A_Expr_Kind.AEXPR_OP and op in RANGE_OPS:
        kind = "range"
    elif node.kind == A_Expr_Kind.AEXPR_IN and op == "=":
        kind = "equality"
    elif node.kind in (A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_NOT_BETWEEN) and node.kind == A_Expr_Kind.AEXPR_BETWEEN:
        kind = "range"
    elif node.kind == A_Expr_Kind.AEXPR_LIKE:
        kind = "range"  # a prefix LIKE can use a btree (with the right operator class)
    if kind:
        usage.setdefault(col[0], TableUsage(col[0])).add(kind, col[1])


def _with(clause: Any, catalog: dict[str, set[str]], usage: dict[str, TableUsage], derived: Derived,
          visible: dict[str, str] | None) -> Derived:  # fmt: skip
    """Analyse each CTE body of a WITH clause (plain, MATERIALIZED or NOT MATERIALIZED alike:
    the planner decides whether filters reach into it); returns the names in scope after it,
    each with the columns its body passes on. A later CTE sees the earlier ones."""
    if clause is None:
        return derived
    derived = dict(derived)
    for cte in clause.ctes:
        body = cte.ctequery
        _statement(body, catalog, usage, derived, visible)
        mapping: dict[str, tuple[str, str]] = {}
        if isinstance(body, ast.SelectStmt) and not body.op and not clause.recursive:
            scope = _Scope(catalog, derived, visible)
            for item in body.fromClause or ():
                scope.add_range(item)
            mapping = scope.passed_on(body)
        derived[cte.ctename] = mapping
    return derived


def _statement(stmt: Any, catalog: dict[str, set[str]], usage: dict[str, TableUsage], derived: Derived,
               visible: dict[str, str] | None) -> None:  # fmt: skip
    if isinstance(stmt, ast.SelectStmt):
        _select(stmt, catalog, usage, derived, visible)
    elif isinstance(stmt, (ast.UpdateStmt, ast.DeleteStmt)):
        derived = _with(stmt.withClause, catalog, usage, derived, visible)
        scope = _Scope(catalog, derived, visible)
        scope.add_range(stmt.relation)
        _predicates(stmt.whereClause, scope, usage)
    elif isinstance(stmt, ast.InsertStmt):
        derived = _with(stmt.withClause, catalog, usage, derived, visible)
        if isinstance(stmt.selectStmt, ast.SelectStmt):
            _select(stmt.selectStmt, catalog, usage, derived, visible)


def _select(stmt: Any, catalog: dict[str, set[str]], usage: dict[str, TableUsage], derived: Derived,
            visible: dict[str, str] | None) -> None:  # fmt: skip
    derived = _with(stmt.withClause, catalog, usage, derived, visible)
    if stmt.op and stmt.larg is not None:  # UNION / INTERSECT / EXCEPT
        _select(stmt.larg, catalog, usage, derived, visible)
        _select(stmt.rarg, catalog, usage, derived, visible)
        return
    scope = _Scope(catalog, derived, visible)
    for item in stmt.fromClause or ():
        scope.add_range(item)
        _joins(item, scope, usage)
    _predicates(stmt.whereClause, scope, usage)
    for sort in stmt.sortClause or ():
        col = scope.resolve(_output_column(sort.node, stmt))
        if col:
            usage.setdefault(col[0], TableUsage(col[0])).add("sort", col[1])
    for group in stmt.groupClause or ():
        col = scope.resolve(_output_column(group, stmt, input_columns=scope.columns()))
        if col:
            usage.setdefault(col[0], TableUsage(col[0])).add("group", col[1])
    for item in stmt.fromClause or ():
        if isinstance(item, ast.RangeSubselect) and isinstance(item.subquery, ast.SelectStmt):
            _select(item.subquery, catalog, usage, derived, visible)


def _output_column(node: Any, stmt: Any, input_columns: frozenset[str] = frozenset()) -> Any:
    """ORDER BY / GROUP BY may name an output column by position (`ORDER BY 1`) or by its
    alias (`SELECT user_id AS u ... ORDER BY u`): the expression behind it, as PostgreSQL reads
    it. GROUP BY prefers a table's column of that name over an alias (`input_columns`)."""
    targets = [t for t in stmt.targetList or () if isinstance(t, ast.ResTarget)]
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
        position = node.val.ival
        return targets[position - 1].val if 1 <= position <= len(targets) else node
    if isinstance(node, ast.ColumnRef) and len(node.fields) == 1 and isinstance(node.fields[0], ast.String):
        name = node.fields[0].sval
        if name in input_columns:
            return node
        for target in targets:
            if target.name == name:
                return target.val
    return node


def _joins(node: Any, scope: _Scope, usage: dict[str, TableUsage]) -> None:
    if isinstance(node, ast.JoinExpr):
        _joins(node.larg, scope, usage)
        _joins(node.rarg, scope, usage)
        _predicates(node.quals, scope, usage)


def analyze(sql: str, catalog: dict[str, set[str]], views: Derived | None = None,
            visible: dict[str, str] | None = None) -> dict[str, TableUsage]:  # fmt: skip
    """Column usage per table of one statement (SELECT, UPDATE or DELETE, and the SELECT of an
    INSERT), CTE bodies included; `views` (name -> the columns it passes on, `derived_columns`)
    are read through to their tables. With `visible` (bare name -> catalog key, the search
    path's), catalog keys are `qualified` names and `schema.table` in the SQL is honoured.
    SqlUsageError for anything but a single plannable
    statement (see `single_statement`)."""
    stmt = single_statement(sql)
    usage: dict[str, TableUsage] = {}
    _statement(stmt, catalog, usage, dict(views or {}), visible)
    return {t: u for t, u in usage.items() if not u.empty}


def parameter_count(sql: str) -> int:
    """Highest $n in a normalized statement."""
    highest = 0

    def walk(node: Any) -> None:
        nonlocal highest
        if isinstance(node, ast.ParamRef):
            highest = max(highest, node.number)
        elif isinstance(node, ast.Node):
            for name in node:
                walk(getattr(node, name))
        elif isinstance(node, tuple):
            for item in node:
                walk(item)

    walk(single_statement(sql))
    return highest


def candidate_columns(usage: TableUsage, widest: int = 3) -> list[tuple[str, ...]]:
    """Index column lists worth trying: equality columns first, then one range column, or
    the sort columns; single columns for each filter and join key."""
    out: list[tuple[str, ...]] = []

    def add(cols: list[str]) -> None:
        cols = list(dict.fromkeys(cols))[:widest]
        if cols and tuple(cols) not in out:
            out.append(tuple(cols))

    eq, rng, sort = usage.equality, usage.range, usage.sort or usage.group
    if eq and rng:
        add(eq + rng[:1])
    if eq and sort:
        add(eq + sort)
    if eq:
        add(eq)
    if rng and sort and rng[0] == sort[0]:
        add(rng[:1])
    elif rng:
        add(rng[:1])
        if sort:
            add(sort)
    elif sort and not eq:
        add(sort)
    for col in eq + usage.join:
        add([col])
    return out
