"""The Spark dialect: lastknown's DuckDB SQL, translated for Spark SQL.

The SQL generated in ``match/``, ``normalize/``, ``request/`` and ``disclose/`` is written
once, in DuckDB's dialect; the DuckDB engine runs it as written and the Spark engine runs
:func:`to_spark` of it. sqlglot parses and writes; the fix-ups below replace what sqlglot
gets wrong or cannot know for every construct the project's SQL uses, each named in
:data:`FIXUPS` (docs/SPARK_SQL.md lists them; a test checks each is tested). A construct
with no sensible translation raises :class:`~lastknown.errors.EngineError` naming it.

``columns`` (table → its column names and DuckDB types) lets ``* EXCLUDE`` and
``* REPLACE`` be expanded and tells which columns are lists (``len``, indexing and slicing
differ between strings and lists); ``tables`` renames tables (a schema-qualified DuckDB
name such as ``lkidx.idx_record`` to the name of a Spark view).

>>> to_spark("SELECT len(parts), parts[-1], len(name) FROM t",
...          columns={"t": {"parts": "VARCHAR[]", "name": "VARCHAR"}})
'SELECT SIZE(parts), TRY_ELEMENT_AT(parts, -1), LENGTH(name) FROM t'
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from lastknown.engines.similarity import JARO_WINKLER_UDF
from lastknown.errors import EngineError

#: Each fix-up applied on top of sqlglot's duckdb → spark translation: name → what it does.
#: docs/SPARK_SQL.md lists the same names; tests/test_spark_sql.py tests each.
FIXUPS: dict[str, str] = {
    "star_except_replace": "`* EXCLUDE (...)` / `* REPLACE (... AS c)` expanded to the columns "
                           "(from `columns`): Spark has neither",
    "table_rename": "tables renamed through `tables` (a DuckDB schema's table → a Spark view)",
    "list_index": "`list[i]` (1-based, negative from the end, NULL out of range) → "
                  "`try_element_at(list, i)`",
    "map_literal": "`MAP {k: v, ...}` → `map(k, v, ...)`; `MAP {...}[k]` → "
                   "`try_element_at(map(...), k)` (sqlglot misreads the bracket)",
    "slice": "`x[a:b]` (1-based, inclusive, negative from the end) → `slice(list, a, n)` for "
             "a list, `substring(s, a, n)` for a string",
    "length_of_list": "`len(list)` / `length(list)` → `size(list)` (sqlglot writes LENGTH)",
    "list_has_any": "`list_has_any(a, b)` → `arrays_overlap` of the lists without NULLs "
                    "(sqlglot writes `a && b`, which Spark rejects)",
    "lambda_index": "a 2-parameter lambda's index (DuckDB's 1-based) → Spark's 0-based + 1",
    "regexp_full_match": "`regexp_full_match(s, p)` → `s RLIKE '^(?:p)$'`",
    "regexp_replace": "`regexp_replace(s, p, r[, flags])`: without `g` only the first match "
                      "(Spark always replaces all), `i`/`s` flags inline, `\\1` → `$1` and "
                      "`$` escaped in the replacement",
    "regexp_extract_group": "`regexp_extract(s, p)` / `regexp_extract_all(s, p)` take group 0 "
                            "as DuckDB does (Spark's default is group 1)",
    "strip_accents": "`strip_accents(s)` → `translate(s, accented, plain)` over Latin letters",
    "try_strptime": "`try_strptime(s, '%m/%d/%Y')` → `try_to_timestamp(s, 'M/d/yyyy')`",
    "hamming": "`hamming(a, b)` → count of positions whose characters differ",
    "damerau_levenshtein": "`damerau_levenshtein` → the Splink jar's function, cast to BIGINT",
    "jaro_winkler": "`jaro_winkler_similarity` → `lk_jaro_winkler`, DuckDB's algorithm as an "
                    "Arrow UDF (the Splink jar's `jaro_winkler` counts transpositions "
                    "differently)",
    "ordered_list_agg": "`list(x ORDER BY k)` / `array_agg(...)` → `collect_list` of "
                        "structs sorted by key (sqlglot drops the ORDER BY)",
    "list_bool_or": "`list_bool_or(l)` → `aggregate` ignoring NULLs",
    "list_position": "`list_position(l, x)` → `array_position`, NULL (not 0) when absent",
    "generate_series": "`generate_series(a, b)` → `sequence(a, b)`, empty when a > b; "
                       "`range(a, b)` stops before b",
    "cte_materialized": "`WITH t AS [NOT] MATERIALIZED (...)` → `WITH t AS (...)` (a DuckDB plan "
                        "hint)",
    "unnest_nested": "`f(unnest(l))` → `explode(transform(l, u -> f(u)))` (Spark allows a "
                     "generator only at the top of a projection)",
    "hash_sample": "`hash(x) % m` → `pmod(xxhash64(x), m)`: a different but fixed sample "
                   "(DuckDB's hash cannot be written in Spark SQL)",
}

#: Constructs with no Spark SQL translation: callers use an Engine hook instead.
UNTRANSLATABLE: dict[str, str] = {
    "read_parquet": "read a file through Engine.register_parquet",
    "information_schema": "ask Engine.columns / Engine.table_exists / Engine.column_types",
    "rowid": "a row's position in the file read: Engine.numbered",
    "current_setting": "engine settings are the engine's: Engine.progress_off, "
                       "joins_as_written, insertion_order_kept",
    "copy": "write files through Engine.copy_to_parquet / copy_to_csv",
    "insert_by_name": "name the columns: INSERT INTO t (a, b) SELECT ...",
    "describe": "ask Engine.columns",
}


class _LkDuckDB(DuckDB):
    """DuckDB as written: list indexes kept as DuckDB's (1-based), not shifted by sqlglot,
    so :func:`_list_index` sees the index the author wrote."""

    INDEX_OFFSET = 0


_LIST_TYPE = re.compile(r"(\[\]$)|(^(LIST|ARRAY)\b)", re.IGNORECASE)
_LIST_MAKERS: tuple[type[exp.Expr], ...] = (
    exp.Array, exp.Split, exp.ArrayFilter, exp.Transform, exp.ArrayConcat, exp.ArrayAgg,
    exp.RegexpExtractAll, exp.Flatten, exp.GenerateSeries, exp.ArrayDistinct, exp.ArraySort,
    exp.StringToArray,
)
_LIST_FUNCTIONS = {"list_distinct", "list_sort", "list_reverse", "list_slice", "list_value",
                   "str_split", "string_split", "list_zip",
                   # what the fix-ups write (children are fixed before their parents)
                   "slice", "collect_list", "collect_set", "array_sort", "sequence", "filter",
                   "transform"}


_USED: ContextVar[set[str] | None] = ContextVar("lk_spark_sql_fixups", default=None)


def _used(name: str) -> None:
    """Note that fix-up ``name`` changed the statement being translated."""
    found = _USED.get()
    if found is not None:
        found.add(name)


def fixups_in(sql: str, *, columns: Mapping[str, Mapping[str, str]] | None = None,
              tables: Mapping[str, str] | None = None) -> set[str]:
    """The names of the fix-ups :func:`to_spark` applies to ``sql`` (for tests and docs)."""
    found: set[str] = set()
    token = _USED.set(found)
    try:
        to_spark(sql, columns=columns, tables=tables)
    finally:
        _USED.reset(token)
    return found


def to_spark(sql: str, *, columns: Mapping[str, Mapping[str, str]] | None = None,
             tables: Mapping[str, str] | None = None) -> str:
    """``sql`` (DuckDB's dialect, as the project writes it) in Spark SQL.

    Raises EngineError naming the construct when it has no Spark translation.
    """
    tree = _parse(sql)
    _refuse_untranslatable(tree, sql)
    schema = {k.lower(): {c.lower(): t for c, t in v.items()} for k, v in (columns or {}).items()}
    if any(_star_has_modifiers(s) for s in tree.find_all(exp.Star)):
        _used("star_except_replace")
        tree = _expand_stars(tree, schema, sql)
    if tables:
        _rename_tables(tree, tables)
    lists = _list_names(tree, schema)
    tree = _fix_all(tree, lists)
    try:
        return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as exc:
        raise EngineError(f"no Spark translation of: {exc}\nin:\n{sql[:2000]}",
                          detail=str(exc)) from exc


def _parse(sql: str) -> exp.Expr:
    # the normalisation SQL nests a few hundred calls deep
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        tree = sqlglot.parse_one(sql, read=_LkDuckDB)
    except sqlglot.errors.ParseError as exc:
        raise EngineError(f"could not read as DuckDB SQL:\n{sql[:2000]}", detail=str(exc)) from exc
    finally:
        sys.setrecursionlimit(limit)
    return tree


def _untranslatable(construct: str, sql: str) -> EngineError:
    return EngineError(
        f"`{construct}` has no Spark SQL translation ({UNTRANSLATABLE[construct]}):\n"
        f"{sql[:2000]}", detail=construct)


def _refuse_untranslatable(tree: exp.Expr, sql: str) -> None:
    if isinstance(tree, exp.Copy):
        raise _untranslatable("copy", sql)
    if isinstance(tree, exp.Describe):
        raise _untranslatable("describe", sql)
    if isinstance(tree, exp.Insert) and tree.args.get("by_name"):
        raise _untranslatable("insert_by_name", sql)
    if isinstance(tree, exp.Command):  # a statement sqlglot keeps as text
        word = str(tree.this).lower()
        if word in UNTRANSLATABLE:
            raise _untranslatable(word, sql)
        raise EngineError(f"`{tree.this}` has no Spark SQL translation:\n{sql[:2000]}",
                          detail=word)
    if tree.find(exp.ReadParquet) is not None or any(
            f.name.lower() == "read_parquet" for f in tree.find_all(exp.Anonymous)):
        raise _untranslatable("read_parquet", sql)
    for table in tree.find_all(exp.Table):
        if table.db.lower() == "information_schema":
            raise _untranslatable("information_schema", sql)
    for col in tree.find_all(exp.Column):
        if col.name.lower() == "rowid" and not col.table:
            raise _untranslatable("rowid", sql)
    if any(f.name.lower() == "current_setting" for f in tree.find_all(exp.Anonymous)):
        raise _untranslatable("current_setting", sql)


# -- stars -------------------------------------------------------------------------------


def _star_has_modifiers(star: exp.Star) -> bool:
    return bool(star.args.get("except_") or star.args.get("except")
                or star.args.get("replace") or star.args.get("rename"))


def _expand_stars(tree: exp.Expr, schema: dict[str, dict[str, str]],
                  sql: str) -> exp.Expr:
    """``* EXCLUDE`` / ``* REPLACE`` spelled out from the input tables' columns."""
    from sqlglot.optimizer.qualify import qualify

    ctes = _cte_names(tree)
    flat: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name in ctes:
            continue
        full = ".".join(p for p in (table.db, table.name) if p).lower()
        found = schema.get(full, schema.get(name))
        if found is None:
            missing.append(full)
        else:
            flat[name] = found
    if missing:
        raise EngineError(
            "`* EXCLUDE` / `* REPLACE` (star_except_replace) needs the columns of "
            f"{', '.join(sorted(missing))} (pass columns=):\n{sql[:2000]}",
            detail="star_except_replace")
    # qualify matches tables by name alone; the db part is put back after
    dbs = {}
    for table in tree.find_all(exp.Table):
        dbs[table.name.lower()] = table.args.get("db")
        table.set("db", None)
    try:
        tree = qualify(tree, schema=dict(flat), dialect=_LkDuckDB, quote_identifiers=False,
                       identify=False, validate_qualify_columns=False,
                       expand_stars=True, qualify_columns=True)
    except Exception as exc:  # sqlglot raises several kinds; all mean "cannot expand"
        raise EngineError(f"could not expand `*` (star_except_replace):\n{sql[:2000]}",
                          detail=str(exc)) from exc
    for table in tree.find_all(exp.Table):  # the schemas put back
        if dbs.get(table.name.lower()) is not None:
            table.set("db", dbs[table.name.lower()])
    return tree


def _cte_names(tree: exp.Expr) -> set[str]:
    return {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}


def _rename_tables(tree: exp.Expr, tables: Mapping[str, str]) -> None:
    lowered = {k.lower(): v for k, v in tables.items()}
    for table in list(tree.find_all(exp.Table)):
        full = ".".join(p for p in (table.db, table.name) if p).lower()
        target = lowered.get(full)
        if target is None:
            continue
        _used("table_rename")
        new = exp.to_table(target, dialect="spark")
        new.set("alias", table.args.get("alias"))
        if not new.args.get("alias") and table.db:
            # columns written `db.table.column` or `table.column` still name the table
            new.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
        table.replace(new)


# -- which names are lists ---------------------------------------------------------------


def _list_names(tree: exp.Expr, schema: dict[str, dict[str, str]]) -> set[str]:
    names = {c for cols in schema.values() for c, t in cols.items() if _LIST_TYPE.search(t)}
    aliases = [(a.alias.lower(), a.this) for a in tree.find_all(exp.Alias)]
    changed = True
    while changed:
        changed = False
        for name, expression in aliases:
            if name not in names and _is_list(expression, names):
                names.add(name)
                changed = True
    return names


def _is_list(node: exp.Expr, lists: set[str]) -> bool:
    if isinstance(node, _LIST_MAKERS):
        return True
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in _LIST_FUNCTIONS
    if isinstance(node, exp.Column):
        return node.name.lower() in lists
    if isinstance(node, exp.Paren):
        return _is_list(node.this, lists)
    if isinstance(node, exp.Bracket):
        sl = node.expressions[0] if node.expressions else None
        return isinstance(sl, exp.Slice) and _is_list(node.this, lists)
    if isinstance(node, exp.Coalesce):
        return any(_is_list(e, lists) for e in [node.this, *node.expressions])
    if isinstance(node, exp.Case):
        return any(_is_list(i.args["true"], lists) for i in node.args.get("ifs") or []) or (
            node.args.get("default") is not None and _is_list(node.args["default"], lists))
    if isinstance(node, exp.Cast):
        return _LIST_TYPE.search(node.to.sql("duckdb")) is not None
    return False


# -- the fix-ups -------------------------------------------------------------------------


def _fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _lit(value: int | str) -> exp.Expr:
    return exp.Literal.number(value) if isinstance(value, int) else exp.Literal.string(value)


def _lambda(params: list[str], body: exp.Expr) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(p) for p in params])


def _var(name: str) -> exp.Expr:
    return exp.column(name)


def _int_literal(node: exp.Expr | None) -> int | None:
    if node is None:
        return None
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this)
        except ValueError:
            return None
    if isinstance(node, exp.Neg):
        inner = _int_literal(node.this)
        return None if inner is None else -inner
    return None


def _fix_all(tree: exp.Expr, lists: set[str]) -> exp.Expr:
    """Every node fixed, children before their parent (a fix sees fixed arguments)."""
    for node in reversed(list(tree.dfs())):
        new = _fix(node, lists)
        if new is node:
            continue
        if node is tree:
            tree = new
        else:
            node.replace(new)
    return tree


def _fix(node: exp.Expr, lists: set[str]) -> exp.Expr:
    handler = _HANDLERS.get(type(node))
    if handler is not None:
        return handler(node, lists)
    if isinstance(node, exp.Anonymous):
        anon = _ANON_HANDLERS.get(node.name.lower())
        if anon is not None:
            return anon(node, lists)
    return node


def _to_map(node: exp.Expr, lists: set[str]) -> exp.Expr:
    inner = node.this
    key = None
    if isinstance(inner, exp.Bracket) and isinstance(inner.this, exp.Struct):
        # sqlglot reads `MAP {...}[k]` as MAP of ({...}[k])
        key = inner.expressions[0]
        inner = inner.this
    if not isinstance(inner, exp.Struct):
        return node
    pairs: list[exp.Expr] = []
    for item in inner.expressions:
        if not isinstance(item, exp.PropertyEQ):
            return node
        k = item.this
        pairs += [exp.Literal.string(k.name) if isinstance(k, exp.Identifier) else k,
                  item.expression]
    _used("map_literal")
    made = _fn("MAP", *pairs)
    return _fn("TRY_ELEMENT_AT", made, key) if key is not None else made


def _bracket(node: exp.Expr, lists: set[str]) -> exp.Expr:
    assert isinstance(node, exp.Bracket)
    if len(node.expressions) != 1:
        raise EngineError(f"`{node.sql('duckdb')}`: no Spark translation of a multi-index",
                          detail="list_index")
    index = node.expressions[0]
    target = node.this
    if isinstance(index, exp.Slice):
        _used("slice")
        return _slice(target, index, _is_list(target, lists))
    if isinstance(target, exp.Struct):  # a struct's field by name
        return node
    _used("list_index")
    return _fn("TRY_ELEMENT_AT", target, index)


def _slice(target: exp.Expr, sl: exp.Slice, is_list: bool) -> exp.Expr:
    size = _fn("SIZE", target.copy()) if is_list else _fn("LENGTH", target.copy())

    def resolve(bound: exp.Expr | None, default: exp.Expr) -> exp.Expr:
        if bound is None:
            return default
        n = _int_literal(bound)
        if n is not None and n < 0:
            return exp.Add(this=size.copy(), expression=_lit(n + 1))
        if n == 0:
            return _lit(1)
        return bound

    start = resolve(sl.this, _lit(1))
    end = resolve(sl.expression, size.copy())
    count = _fn("GREATEST", exp.Add(this=exp.Sub(this=exp.paren(end), expression=exp.paren(
        start.copy())), expression=_lit(1)), _lit(0))
    if is_list:
        return _fn("SLICE", target, start, count)
    return exp.Substring(this=target, start=start, length=count)


def _length(node: exp.Expr, lists: set[str]) -> exp.Expr:
    if _is_list(node.this, lists):
        _used("length_of_list")
        return _fn("SIZE", node.this)
    return node


def _anon_len(node: exp.Expr, lists: set[str]) -> exp.Expr:
    arg = node.expressions[0]
    if _is_list(arg, lists):
        _used("length_of_list")
        return _fn("SIZE", arg)
    return exp.Length(this=arg)


def _no_nulls(arr: exp.Expr) -> exp.Expr:
    return exp.ArrayFilter(this=arr, expression=_lambda(["x"], exp.Not(this=exp.Is(
        this=_var("x"), expression=exp.Null()))))


def _overlaps(node: exp.Expr, lists: set[str]) -> exp.Expr:
    _used("list_has_any")
    return _fn("ARRAYS_OVERLAP", _no_nulls(node.this), _no_nulls(node.expression))


def _lambda_index(node: exp.Expr, lists: set[str]) -> exp.Expr:
    """In ``list_filter(l, (x, i) -> ...)`` DuckDB's ``i`` counts from 1, Spark's from 0."""
    if not isinstance(node, exp.ArrayFilter | exp.Transform):
        return node
    lam = node.expression
    if not isinstance(lam, exp.Lambda) or len(lam.expressions) != 2:
        return node
    _used("lambda_index")
    index = lam.expressions[1].name
    shifted = f"{index}0"
    lam.expressions[1].replace(exp.to_identifier(shifted))

    def shift(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Identifier | exp.Column) and n.name == index and not (
                isinstance(n, exp.Column) and n.table):
            return exp.paren(exp.Add(this=exp.column(shifted), expression=_lit(1)))
        return n

    body = lam.this
    if isinstance(body, exp.Identifier | exp.Column):
        lam.set("this", shift(body))
    else:
        lam.set("this", body.transform(shift))
    return node


def _regexp_full_match(node: exp.Expr, lists: set[str]) -> exp.Expr:
    pattern = node.expression
    anchored: exp.Expr
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        anchored = exp.Literal.string(f"^(?:{pattern.this})$")
    else:
        anchored = exp.DPipe(this=exp.DPipe(this=exp.Literal.string("^(?:"), expression=pattern),
                             expression=exp.Literal.string(")$"))
    _used("regexp_full_match")
    return exp.RegexpLike(this=node.this, expression=anchored)


def _java_replacement(rep: str, shift: int) -> str:
    """RE2's replacement (``\\1``, ``\\\\``) as Java's (``$1``, ``\\$``)."""
    out: list[str] = []
    i = 0
    while i < len(rep):
        ch = rep[i]
        if ch == "\\" and i + 1 < len(rep):
            nxt = rep[i + 1]
            if nxt.isdigit():
                out.append(f"${int(nxt) + shift}")
            else:
                out.append("\\\\" if nxt == "\\" else re.escape(nxt))
            i += 2
            continue
        out.append("\\$" if ch == "$" else "\\\\" if ch == "\\" else ch)
        i += 1
    return "".join(out)


def _regexp_replace(node: exp.Expr, lists: set[str]) -> exp.Expr:
    pattern, rep = node.expression, node.args.get("replacement")
    modifiers = node.args.get("modifiers")
    flags = ""
    if modifiers is not None:
        if not (isinstance(modifiers, exp.Literal) and modifiers.is_string):
            raise EngineError("regexp_replace with flags that are not a literal",
                              detail="regexp_replace")
        flags = modifiers.this
    if set(flags) - set("gis"):
        raise EngineError(f"regexp_replace flags {flags!r}: only g, i and s translate",
                          detail="regexp_replace")
    if not (isinstance(rep, exp.Literal) and rep.is_string):
        raise EngineError(f"regexp_replace with a replacement that is not a literal: "
                          f"{node.sql('duckdb')[:200]}", detail="regexp_replace")
    inline = "".join(f for f in "is" if f in flags)
    prefix = f"(?{inline})" if inline else ""
    if "g" in flags:
        new_pattern: exp.Expr = _prefixed(prefix, pattern)
        replacement = _java_replacement(rep.this, 0)
    else:
        # the first match only: the shortest prefix, then the match; the prefix is group 1
        new_pattern = _prefixed(prefix + "^(?s:(.*?))(?:", pattern, ")")
        replacement = "$1" + _java_replacement(rep.this, 1)
    _used("regexp_replace")
    return _fn("REGEXP_REPLACE", node.this, new_pattern, exp.Literal.string(replacement))


def _prefixed(prefix: str, pattern: exp.Expr, suffix: str = "") -> exp.Expr:
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        return exp.Literal.string(prefix + pattern.this + suffix)
    out: exp.Expr = pattern
    if prefix:
        out = exp.DPipe(this=exp.Literal.string(prefix), expression=out)
    if suffix:
        out = exp.DPipe(this=out, expression=exp.Literal.string(suffix))
    return out


def _regexp_extract(node: exp.Expr, lists: set[str]) -> exp.Expr:
    group = node.args.get("group") or _lit(0)
    name = "REGEXP_EXTRACT_ALL" if isinstance(node, exp.RegexpExtractAll) else "REGEXP_EXTRACT"
    if node.args.get("parameters") is not None or node.args.get("position") is not None:
        raise EngineError(f"`{node.sql('duckdb')[:200]}`: options do not translate",
                          detail="regexp_extract_group")
    _used("regexp_extract_group")
    return _fn(name, node.this, node.expression, group)


@lru_cache(maxsize=1)
def _accent_table() -> tuple[str, str]:
    """Latin letters with diacritics and their base letter (DuckDB's strip_accents drops
    the combining marks of the NFD form)."""
    accented, plain = [], []
    for code in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFD", ch)
                       if not unicodedata.combining(c))
        if base != ch and len(base) == 1:
            accented.append(ch)
            plain.append(base)
    return "".join(accented), "".join(plain)


def _strip_accents(node: exp.Expr, lists: set[str]) -> exp.Expr:
    accented, plain = _accent_table()
    _used("strip_accents")
    return _fn("TRANSLATE", node.expressions[0], exp.Literal.string(accented),
               exp.Literal.string(plain))


_STRFTIME = {"%Y": "yyyy", "%m": "M", "%d": "d", "%b": "MMM", "%B": "MMMM", "%H": "H",
             "%M": "m", "%S": "s", "%y": "yy", "%%": "%"}
_STRFTIME_FIXED = {"%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss"}


def _java_date_format(fmt: str) -> str:
    tokens = re.findall(r"%.|[^%]+", fmt)
    adjacent = any(a.startswith("%") and b.startswith("%") for a, b in zip(tokens, tokens[1:],
                                                                          strict=False))
    out: list[str] = []
    for tok in tokens:
        if tok.startswith("%"):
            table = _STRFTIME_FIXED if adjacent and tok in _STRFTIME_FIXED else _STRFTIME
            if tok not in table and tok not in _STRFTIME:
                raise EngineError(f"strptime format {fmt!r}: {tok} does not translate",
                                  detail="try_strptime")
            out.append(table.get(tok, _STRFTIME.get(tok, "")))
        else:
            out.append("'" + tok.replace("'", "''") + "'" if re.search(r"[A-Za-z]", tok)
                       else tok)
    return "".join(out)


def _try_strptime(node: exp.Expr, lists: set[str]) -> exp.Expr:
    value, fmt = node.expressions
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise EngineError("try_strptime with a format that is not a literal",
                          detail="try_strptime")
    _used("try_strptime")
    return _fn("TRY_TO_TIMESTAMP", value, exp.Literal.string(_java_date_format(fmt.this)))


def _hamming(node: exp.Expr, lists: set[str]) -> exp.Expr:
    a, b = node.expressions
    _used("hamming")
    differs = exp.NEQ(this=exp.Substring(this=a.copy(), start=_var("i"), length=_lit(1)),
                      expression=exp.Substring(this=b.copy(), start=_var("i"), length=_lit(1)))
    count = _fn("SIZE", exp.ArrayFilter(this=_fn("SEQUENCE", _lit(1), exp.Length(this=a.copy())),
                                        expression=_lambda(["i"], differs)))
    return exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.Length(this=a.copy()), expression=_lit(0)),
                                true=exp.Length(this=b.copy()))], default=count)


def _damerau(node: exp.Expr, lists: set[str]) -> exp.Expr:
    _used("damerau_levenshtein")
    return exp.Cast(this=_fn("DAMERAU_LEVENSHTEIN", *node.expressions),
                    to=exp.DataType.build("BIGINT"))


def _jaro_winkler(node: exp.Expr, lists: set[str]) -> exp.Expr:
    _used("jaro_winkler")
    return _fn(JARO_WINKLER_UDF.upper(), node.this, node.expression)


def _array_agg(node: exp.Expr, lists: set[str]) -> exp.Expr:
    _used("ordered_list_agg")
    inner = node.this
    if not isinstance(inner, exp.Order):
        if isinstance(inner, exp.Distinct):
            return _fn("COLLECT_SET", *inner.expressions)
        return _fn("COLLECT_LIST", inner)
    value = inner.this
    keys = inner.expressions
    if any(k.args.get("desc") for k in keys):
        raise EngineError(f"`{node.sql('duckdb')[:200]}`: a descending list order does not "
                          "translate", detail="ordered_list_agg")
    if isinstance(value, exp.Distinct):
        items = value.expressions
        if len(items) == 1 and len(keys) == 1 and keys[0].this == items[0]:
            return _fn("ARRAY_SORT", _fn("COLLECT_SET", items[0]))
        raise EngineError(f"`{node.sql('duckdb')[:200]}`: DISTINCT ordered by another "
                          "expression does not translate", detail="ordered_list_agg")
    # a struct's NULL fields sort first: NULL keys come first whatever NULLS says (the
    # project orders lists by keys that are never NULL)
    fields = [exp.PropertyEQ(this=exp.to_identifier(f"k{i}"), expression=k.this)
              for i, k in enumerate(keys)]
    fields.append(exp.PropertyEQ(this=exp.to_identifier("v"), expression=value))
    sorted_structs = _fn("ARRAY_SORT", _fn("COLLECT_LIST", exp.Struct(expressions=fields)))
    listed = exp.Transform(this=sorted_structs, expression=_lambda(
        ["s"], exp.Dot(this=_var("s"), expression=exp.to_identifier("v"))))
    # DuckDB's list of no rows is NULL, Spark's collect_list of none is []
    return exp.Case(ifs=[exp.If(this=exp.EQ(this=exp.Count(this=exp.Star()), expression=_lit(0)),
                                true=exp.Null())], default=listed)


def _list_bool_or(node: exp.Expr, lists: set[str]) -> exp.Expr:
    _used("list_bool_or")
    acc, x = _var("acc"), _var("x")
    step = exp.Case(ifs=[exp.If(this=exp.Is(this=x, expression=exp.Null()), true=acc.copy())],
                    default=exp.Or(this=_fn("COALESCE", acc.copy(), exp.false()),
                                   expression=x.copy()))
    return _fn("AGGREGATE", node.expressions[0],
               exp.Cast(this=exp.Null(), to=exp.DataType.build("BOOLEAN")),
               _lambda(["acc", "x"], step))


def _list_position(node: exp.Expr, lists: set[str]) -> exp.Expr:
    _used("list_position")
    return exp.Nullif(this=_fn("ARRAY_POSITION", *node.expressions), expression=_lit(0))


def _generate_series(node: exp.Expr, lists: set[str]) -> exp.Expr:
    start, end = node.args["start"], node.args["end"]
    if node.args.get("step") is not None:
        raise EngineError("generate_series with a step does not translate",
                          detail="generate_series")
    _used("generate_series")
    # DuckDB's range(a, b) stops before b; generate_series(a, b) and Spark's sequence
    # include it. The filter keeps only the elements DuckDB gives (none when a > b).
    below = exp.LT if node.args.get("is_end_exclusive") else exp.LTE
    keep = exp.And(this=exp.GTE(this=_var("x"), expression=start.copy()),
                   expression=below(this=_var("x"), expression=end.copy()))
    return exp.ArrayFilter(this=_fn("SEQUENCE", start, end), expression=_lambda(["x"], keep))


def _mod(node: exp.Expr, lists: set[str]) -> exp.Expr:
    left = node.this
    if isinstance(left, exp.Anonymous) and left.name.lower() == "hash":
        _used("hash_sample")
        return _fn("PMOD", _fn("XXHASH64", *left.expressions), node.expression)
    return node


def _anon_hash(node: exp.Expr, lists: set[str]) -> exp.Expr:
    parent = node.parent
    if isinstance(parent, exp.Mod) and parent.this is node:
        return node  # type: ignore[no-any-return]  # the enclosing `% m` becomes pmod
    _used("hash_sample")
    return _fn("XXHASH64", *node.expressions)


_Handler = Callable[[exp.Expr, set[str]], exp.Expr]

def _explode(node: exp.Expr, lists: set[str]) -> exp.Expr:
    """``f(unnest(l)) AS c`` → ``explode(transform(l, u -> f(u))) AS c``: Spark allows a
    generator only at the top of a projection."""
    top: exp.Expr = node
    while top.parent is not None and not isinstance(top.parent, exp.Select | exp.Alias):
        top = top.parent
    if top is node:
        return node
    if top.parent is None or not isinstance(top.parent, exp.Select | exp.Alias):
        raise EngineError(f"`{top.sql('duckdb')[:200]}`: unnest outside a projection",
                          detail="unnest_nested")
    _used("unnest_nested")
    source = node.this
    placeholder = _var("lk_u")
    node.replace(placeholder)
    # the ancestors up to the projection are not fixed yet (children go first): fix them
    path: list[exp.Expr] = []
    step = placeholder.parent
    while step is not None and step is not top.parent:
        path.append(step)
        step = step.parent
    body = top
    for ancestor in path:
        new = _fix(ancestor, lists)
        if new is not ancestor:
            if ancestor is top:
                body = new
            else:
                ancestor.replace(new)
    lifted = exp.Explode(this=exp.Transform(this=source, expression=_lambda(["lk_u"],
                                                                          body.copy())))
    top.replace(lifted)
    return lifted


def _cte(node: exp.Expr, lists: set[str]) -> exp.Expr:
    if node.args.get("materialized") is not None:
        _used("cte_materialized")
        node.set("materialized", None)
    return node


_HANDLERS: dict[type[exp.Expr], _Handler] = {
    exp.CTE: _cte,
    exp.Explode: _explode,
    exp.ToMap: _to_map,
    exp.Bracket: _bracket,
    exp.Length: _length,
    exp.ArrayOverlaps: _overlaps,
    exp.ArrayFilter: _lambda_index,
    exp.Transform: _lambda_index,
    exp.RegexpFullMatch: _regexp_full_match,
    exp.RegexpReplace: _regexp_replace,
    exp.RegexpExtract: _regexp_extract,
    exp.RegexpExtractAll: _regexp_extract,
    exp.JarowinklerSimilarity: _jaro_winkler,
    exp.ArrayAgg: _array_agg,
    exp.GenerateSeries: _generate_series,
    exp.Mod: _mod,
}

_ANON_HANDLERS: dict[str, _Handler] = {
    "strip_accents": _strip_accents,
    "try_strptime": _try_strptime,
    "hamming": _hamming,
    "damerau_levenshtein": _damerau,
    "list_bool_or": _list_bool_or,
    "list_position": _list_position,
    "len": _anon_len,
    "hash": _anon_hash,
}


def spark_type(duckdb_type: str) -> str:
    """A DuckDB column type as Spark's (for a table declared with columns)."""
    return exp.DataType.build(duckdb_type, dialect=_LkDuckDB).sql(dialect="spark")

