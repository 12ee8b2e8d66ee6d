"""One line per config error: `FILE: dotted.path = VALUE: what is allowed` (see masterocr.train.schema)."""

import json
from typing import Any

from pydantic_core import ErrorDetails

_PLAIN = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "model_type": "must be an object ({...})",
    "model_attributes_type": "must be an object ({...})",
    "dict_type": "must be an object ({...})",
    "list_type": "must be a list ([...])",
    "tuple_type": "must be a list ([...])",
}
_LIMITS = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "multiple_of": "must be a multiple of {multiple_of}",
    "literal_error": "must be {expected}",
    "too_short": "must have at least {min_length} entries",
    "too_long": "must have at most {max_length} entries",
}
_SHOW_MAX = 80


def one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped, so that it prints as one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def show(value: Any) -> str:
    """A value as JSON (shortened), on one line."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    text = one_line(text)
    return text if len(text) <= _SHOW_MAX else text[: _SHOW_MAX - 3] + "..."


def dotted(loc: list[Any]) -> str:
    """('trainer', 'epochs') -> 'trainer.epochs'; list positions as [i]."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return one_line(out) or "(the top level)"


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _owner(raw: Any, loc: list[Any], word: str) -> str:
    """' {word} X' for the type X of the innermost section around `loc` that names one, e.g. ' by StepLR'."""
    node, kind = raw, ""
    for part in loc:
        if isinstance(node, dict) and isinstance(node.get("type"), str):
            kind = node["type"]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return f" {word} {kind}" if kind else ""


def describe(err: ErrorDetails, raw: Any) -> str:
    """`path = value: what is allowed` (or `path is missing ...`) for one pydantic error over `raw`."""
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("<"))]  # union tags
    kind, ctx, value = err["type"], dict(err.get("ctx") or {}), err["input"]
    if kind == "missing":
        return f"{dotted(loc)} is missing (required{_owner(raw, loc, 'by')})"
    if kind == "unknown_argument":
        owner = _owner(raw, loc, "of")
        loc.append(ctx["key"])
        return f"{dotted(loc)} = {show(value[ctx['key']])}: unknown argument{owner}{ctx['hint']}; " \
               f"accepted: {ctx['accepted']}"
    if kind == "section_type":
        allowed = err["msg"]
        if not isinstance(value, dict):
            return f'{dotted(loc)} = {show(value)}: must be an object {{"type": ..., "args": {{...}}}}; {allowed}'
        if "type" not in value:
            return f"{dotted([*loc, 'type'])} is missing: {allowed}"
        return f"{dotted([*loc, 'type'])} = {show(value['type'])}: {allowed}"
    if kind in _PLAIN:
        what = _PLAIN[kind]
    elif kind in _LIMITS:
        what = _LIMITS[kind].format(**{k: _number(v) for k, v in ctx.items()})
    else:
        what = one_line(err["msg"].removeprefix("Value error, "))
    return f"{dotted(loc)} = {show(value)}: {what}"


def summary(source: str, errors: list[ErrorDetails], raw: Any) -> str:
    """The first error as one line, with how many more there are."""
    extra = len(errors) - 1 + sum(int((e.get("ctx") or {}).get("more", 0)) for e in errors)
    more = f" (and {extra} more)" if extra else ""
    return f"{one_line(source)}: {describe(errors[0], raw)}{more}"
