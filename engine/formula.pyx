"""Safe evaluator for Voucherify ``*_formula`` expressions (no ``eval``).

A formula is tokenized and parsed once into a tuple AST, then evaluated against
an environment dict. Money operands are in **major units** (``ORDER_AMOUNT`` is
``order.amount / 100``), because the docs' examples compare order amounts with
numbers such as 300 and return 20 for a 2000-cent price; callers scale money
results back by 100. A missing operand is ``None`` and poisons the arithmetic it
meets, so ``DEFAULT_TO`` can pick a fallback; a formula that ends as ``None``
means "use the static value".

Environment keys: operand names (``ORDER_AMOUNT``, ``ORDER_ITEM_PRICE``, ``TODAY``,
``NOW`` as ``datetime``…) map to values; metadata functions
(``ORDER_METADATA("k")`` …) look up ``env[FUNCTION_NAME][k]``.
"""

import math
from datetime import date, datetime, timezone

from engine.money import EngineInputError

_OPS2 = (">=", "<=", "!=", "<>", "==")
_OPS1 = "+-*/%><=();,x÷"
_WORD_OPS = {"is": "is", "isNot": "isnot", "contains": "contains", "startsWith": "startswith",
             "endsWith": "endswith", "IN_ARRAY": "in", "NOT_IN_ARRAY": "notin"}
_CMP = {">", "<", "=", ">=", "<=", "!=", "is", "isnot", "contains", "startswith", "endswith", "in", "notin"}


cdef list _tokenize(str src):
    cdef list out = []
    cdef Py_ssize_t i = 0, n = len(src), j
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            j = i
            while j < n and (src[j].isdigit() or src[j] == "."):
                j += 1
            try:
                out.append(("num", float(src[i:j])))
            except ValueError:
                raise EngineInputError(f"bad number in formula: {src[i:j]!r}") from None
            i = j
        elif c == '"' or c == "'":
            j = src.find(c, i + 1)
            if j < 0:
                raise EngineInputError("unterminated string in formula")
            out.append(("str", src[i + 1:j]))
            i = j + 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            if word in _WORD_OPS:
                out.append(("op", _WORD_OPS[word]))
            elif word == "x":
                out.append(("op", "*"))
            else:
                out.append(("id", word))
            i = j
        elif src[i:i + 2] in _OPS2:
            op = src[i:i + 2]
            out.append(("op", {"==": "=", "<>": "!="}.get(op, op)))
            i += 2
        elif c in _OPS1:
            out.append(("op", {"÷": "/", ",": ";"}.get(c, c)))
            i += 1
        else:
            raise EngineInputError(f"unexpected character in formula: {c!r}")
    return out


cdef class _Parser:
    cdef list toks
    cdef Py_ssize_t pos

    def __init__(self, list toks):
        self.toks = toks
        self.pos = 0

    cdef object peek(self):
        return self.toks[self.pos] if self.pos < len(self.toks) else ("end", None)

    cdef object take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    cdef void expect(self, str op) except *:
        tok = self.take()
        if tok != ("op", op):
            raise EngineInputError(f"formula: expected {op!r}, got {tok[1]!r}")

    cdef object comparison(self):
        left = self.additive()
        tok = self.peek()
        if tok[0] == "op" and tok[1] in _CMP:
            self.pos += 1
            return ("bin", tok[1], left, self.additive())
        return left

    cdef object additive(self):
        node = self.term()
        while True:
            tok = self.peek()
            if tok[0] == "op" and tok[1] in ("+", "-"):
                self.pos += 1
                node = ("bin", tok[1], node, self.term())
            else:
                return node

    cdef object term(self):
        node = self.unary()
        while True:
            tok = self.peek()
            if tok[0] == "op" and tok[1] in ("*", "/", "%"):
                self.pos += 1
                node = ("bin", tok[1], node, self.unary())
            else:
                return node

    cdef object unary(self):
        tok = self.peek()
        if tok == ("op", "-"):
            self.pos += 1
            return ("neg", self.unary())
        if tok == ("op", "+"):
            self.pos += 1
            return self.unary()
        return self.primary()

    cdef object primary(self):
        tok = self.take()
        kind = tok[0]
        if kind == "num":
            return ("lit", tok[1])
        if kind == "str":
            return ("lit", tok[1])
        if tok == ("op", "("):
            node = self.comparison()
            self.expect(")")
            return node
        if kind == "id":
            if self.peek() == ("op", "("):
                self.pos += 1
                args = []
                if self.peek() != ("op", ")"):
                    args.append(self.comparison())
                    while self.peek() == ("op", ";"):
                        self.pos += 1
                        args.append(self.comparison())
                self.expect(")")
                if tok[1] not in _FUNCS and not tok[1].endswith("METADATA"):
                    raise EngineInputError(f"formula: unknown function {tok[1]}")
                return ("call", tok[1], tuple(args))
            return ("var", tok[1])
        raise EngineInputError(f"formula: unexpected {tok[1]!r}")


def _num(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def _round_to(v, digits, mode):
    if v is None:
        return None
    p = 10.0 ** (int(digits) if digits is not None else 0)
    x = v * p
    if mode == 0:
        r = math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)
    elif mode == 1:
        r = math.floor(x)
    else:
        r = math.ceil(x)
    return r / p


def _to_date(v):
    if isinstance(v, datetime):
        return v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
    if isinstance(v, str):
        try:
            d = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return d if d.tzinfo else d.replace(tzinfo=timezone.utc)
    return None


cdef object _call(str name, tuple args, dict env):
    cdef list vals
    if name == "IF":
        if len(args) != 3:
            raise EngineInputError("formula: IF takes 3 arguments")
        return _eval(args[1] if _eval(args[0], env) else args[2], env)
    if name == "DEFAULT_TO":
        for a in args:
            v = _eval(a, env)
            if v is not None:
                return v
        return None
    vals = [_eval(a, env) for a in args]
    if name.endswith("METADATA"):
        src = env.get(name)
        if not isinstance(src, dict) or not vals:
            return None
        return src.get(vals[0])
    if name in ("MIN", "MAX"):
        nums = [_num(v) for v in vals]
        if not nums or any(v is None for v in nums):
            return None
        return min(nums) if name == "MIN" else max(nums)
    if name == "POW":
        a, b = _num(vals[0]), _num(vals[1])
        return None if a is None or b is None else a ** b
    if name in ("ROUND", "FLOOR", "CEIL"):
        return _round_to(_num(vals[0]), _num(vals[1]) if len(vals) > 1 else 0,
                         {"ROUND": 0, "FLOOR": 1, "CEIL": 2}[name])
    if name in ("DATE", "DATE_TIME"):
        return _to_date(vals[0])
    d = _to_date(vals[0]) if vals else None
    if d is None:
        return None
    if name == "DAY_OF_MONTH":
        return d.day
    if name == "MONTH":
        return d.month
    if name == "YEAR":
        return d.year
    now = _to_date(env.get("NOW"))
    if now is None:
        return None
    if name == "DAYS_SINCE":
        return (now - d).days
    if name == "MONTHS_SINCE":
        return (now.year - d.year) * 12 + now.month - d.month - (1 if now.day < d.day else 0)
    if name == "YEARS_SINCE":
        return now.year - d.year - (1 if (now.month, now.day) < (d.month, d.day) else 0)
    raise EngineInputError(f"formula: unknown function {name}")


_FUNCS = frozenset({"IF", "DEFAULT_TO", "MIN", "MAX", "POW", "ROUND", "FLOOR", "CEIL", "DATE", "DATE_TIME",
                    "DAY_OF_MONTH", "MONTH", "YEAR", "DAYS_SINCE", "MONTHS_SINCE", "YEARS_SINCE"})


cdef object _eval(object node, dict env):
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        return env.get(node[1])
    if kind == "neg":
        v = _num(_eval(node[1], env))
        return None if v is None else -v
    if kind == "call":
        return _call(node[1], node[2], env)
    op = node[1]
    a = _eval(node[2], env)
    b = _eval(node[3], env)
    if op in ("is", "isnot", "contains", "startswith", "endswith", "in", "notin"):
        if a is None or b is None:
            return False
        sa, sb = str(a), str(b)
        if op == "is":
            return sa == sb
        if op == "isnot":
            return sa != sb
        if op == "contains":
            return sb in sa
        if op == "startswith":
            return sa.startswith(sb)
        if op == "endswith":
            return sa.endswith(sb)
        members = [s.strip() for s in sb.split(",")]
        return (sa in members) if op == "in" else (sa not in members)
    if op == "=" or op == "!=":
        if isinstance(a, str) or isinstance(b, str):
            eq = str(a) == str(b)
        else:
            eq = _num(a) == _num(b)
        return eq if op == "=" else not eq
    x, y = _num(a), _num(b)
    if isinstance(a, datetime) and isinstance(b, datetime):
        x, y = a.timestamp(), b.timestamp()
    if x is None or y is None:
        return False if op in (">", "<", ">=", "<=") else None
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        return None if y == 0 else x / y
    if op == "%":
        return None if y == 0 else math.fmod(x, y)
    if op == ">":
        return x > y
    if op == "<":
        return x < y
    if op == ">=":
        return x >= y
    if op == "<=":
        return x <= y
    raise EngineInputError(f"formula: unknown operator {op}")


cdef class Formula:
    """A parsed formula; ``evaluate(env)`` returns a number, string, bool, date or None."""

    def __init__(self, str source):
        if not source or not source.strip():
            raise EngineInputError("formula is empty")
        parser = _Parser(_tokenize(source))
        self.ast = parser.comparison()
        if parser.pos != len(parser.toks):
            raise EngineInputError(f"formula: unexpected {parser.peek()[1]!r}")
        self.source = source

    cpdef object evaluate(self, dict env):
        v = _eval(self.ast, env)
        if isinstance(v, float) and (v != v or v in (math.inf, -math.inf)):
            return None
        return v

    def __repr__(self):
        return f"Formula({self.source!r})"


cdef dict _CACHE = {}


cpdef Formula compile_formula(str source):
    """Parse ``source`` once; identical sources share one compiled Formula."""
    cdef Formula f = _CACHE.get(source)
    if f is None:
        if len(_CACHE) > 10000:
            _CACHE.clear()
        f = Formula(source)
        _CACHE[source] = f
    return f
