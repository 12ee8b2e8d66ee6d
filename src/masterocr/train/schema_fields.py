"""Building blocks of the config schema (masterocr.train.schema): value types and the two kinds of section.

The config is validated as the JSON it is, and the validated models are what the trainer reads (their values
converted: strings of numbers to numbers, the original's boolean words to booleans). Each type accepts what the
original's configs wrote there:

- `IntText`/`NumText`: a JSON number or a string holding one (the original's configs wrote some numbers as
  strings); `Int`/`Num`: a JSON number only. Booleans are never numbers, floats never integers, NaN and
  infinities never numbers. With both `ge` and `le` a value out of range is "must be ... from LO to HI": the
  bounds come from masterocr.limits (counts of a run) and masterocr.model.config (sizes of the network, `Size`).
- `Flag`: true/false, 0/1 or the strings "true"/"false"/"yes"/"no"/"on"/"off"/"1"/"0"/""; `Bool`: true/false
  only, where the original's configs always wrote real booleans.
- `Open` sections keep keys they do not know, so that validate_config can name every one with the closest known
  name (an error); `Closed` sections (arguments of a dataset, optimizer or scheduler) refuse them as they are
  validated, listing the accepted arguments.
- `tagged_sections`: `{"type": ..., "args": {...}}` sections whose arguments depend on the type.

Fields declared with `absent()` or `default()` may be left out (meaning: the default) but not set to null;
fields where null means "none" are typed `X | None`.
"""

import difflib
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationError,
    WrapValidator,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from masterocr.limits import MAX_BATCH, MAX_WORKERS
from masterocr.model.config import INT_RANGES

TRUE_WORDS = ("true", "1", "yes", "on")  # booleans written as text: the config's words and the command line's
FALSE_WORDS = ("false", "0", "no", "off", "")


def _int_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:  # also for strings past Python's digit limit
            return value
    return value


def _num_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else value
    if type(value) is int and value in (0, 1):
        return bool(value)
    return value


def _bounded(kind: type, limits: dict[str, Any]) -> list[Any]:
    """pydantic's limits of a number type; with both ge and le, a value out of range is one error naming the
    whole range ("must be an integer from 1 to 4096") instead of the end it passed."""
    if "ge" not in limits or "le" not in limits:
        return [Field(**limits)]
    lo, hi = limits["ge"], limits["le"]
    noun = "an integer" if kind is int else "a number"

    def whole_range(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if any(e["type"] in ("greater_than_equal", "less_than_equal") for e in exc.errors()):
                raise PydanticCustomError("range", "must be {noun} from {lo} to {hi}",
                                          {"noun": noun, "lo": lo, "hi": hi}) from None
            raise

    return [Field(**limits), WrapValidator(whole_range)]


def Int(**limits: Any) -> Any:  # noqa: N802 (a type factory, named like the types it makes)
    """A JSON integer (not a boolean, not a float), with pydantic limits such as ge=1 (ge with le: a range)."""
    return Annotated[(int, Strict(), *_bounded(int, limits))]


def IntText(**limits: Any) -> Any:  # noqa: N802
    """A JSON integer or a string holding one (converted by int() where it is read)."""
    return Annotated[(int, Strict(), *_bounded(int, limits), BeforeValidator(_int_text))]


def Num(**limits: Any) -> Any:  # noqa: N802
    """A finite JSON number (integers included, booleans not)."""
    return Annotated[(float, Strict(), Field(allow_inf_nan=False), *_bounded(float, limits))]


def NumText(**limits: Any) -> Any:  # noqa: N802
    """A finite JSON number or a string holding one (converted by float() where it is read)."""
    return Annotated[(float, Strict(), Field(allow_inf_nan=False), *_bounded(float, limits),
                      BeforeValidator(_num_text))]


Batch = IntText(ge=1, le=MAX_BATCH)  # images per batch
Workers = IntText(ge=0, le=MAX_WORKERS)  # loader worker processes


def Size(name: str, text: bool = True, lo: int | None = None, **extra: Any) -> Any:  # noqa: N802
    """A model size bounded as MasterConfig bounds its field `name` (one range for both; `lo` raises the low end):
    an IntText, or an Int when not `text`; `extra`: more pydantic limits (multiple_of)."""
    low, hi = INT_RANGES[name]
    return (IntText if text else Int)(ge=low if lo is None else lo, le=hi, **extra)


Flag = Annotated[bool, Strict(), BeforeValidator(_flag)]
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]
Name = Annotated[str, Strict(), Field(min_length=1)]


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise PydanticCustomError("nul_in_path", "a path cannot contain a NUL character")
    return value


PathText = Annotated[str, Strict(), Field(min_length=1), AfterValidator(_no_nul)]


def no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str) -> Any:
    """A field that may be left out (meaning: the reader's default) but not set to null."""
    return Field(None, description=description, json_schema_extra=no_default)


def default(value: Any, description: str) -> Any:
    """A field that may be left out (meaning `value`) but not set to null."""
    return Field(value, description=description)


def ignored(description: str = "accepted for the original's configs and ignored") -> Any:
    """A key of the original's configs that nothing here reads: any value."""
    return Field(None, description=description)


def closest(key: str, known: list[str]) -> str:
    """' (did you mean "x"?)' for the known name closest to `key`, or ''."""
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""


class Open(BaseModel):
    """A section whose unknown keys are kept and warned about (see masterocr.train.schema)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Closed(BaseModel):
    """A section whose unknown keys are errors: its keys are passed on as keyword arguments."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = list(cls.model_fields)
        unknown = [k for k in data if k not in cls.model_fields]
        if unknown:
            key = str(unknown[0])
            raise PydanticCustomError(
                "unknown_argument",
                "unknown argument{hint}; accepted: {accepted}",
                {"key": key, "hint": closest(key, known), "accepted": ", ".join(known), "more": len(unknown) - 1},
            )
        return data


def _one_or_list(value: Any) -> str:
    return "<list>" if isinstance(value, list) else "<one>"


def OneOrList(item: Any) -> Any:  # noqa: N802
    """`item` or a list of them (the tags keep union member names out of error paths)."""
    return Annotated[
        Annotated[item, Tag("<one>")] | Annotated[list[item], Tag("<list>")], Discriminator(_one_or_list)
    ]


def _empty_if_null(value: Any) -> Any:
    return {} if value is None else value


def tagged_sections(
    kinds: dict[str, Any], what: str, default: str | None = None, nulls: tuple[Any, ...] = ()
) -> Any:
    """A union of `{"type": kind, "args": ...}` sections picked by "type" (absent/null args: {}).

    `default`: the kind used when "type" is absent or one of `nulls`.
    """
    members = []
    for kind, args in kinds.items():
        type_ = Literal[(kind, *nulls)] if kind == default else Literal[kind]
        named = isinstance(args, type) and issubclass(args, BaseModel)
        section = create_model(
            (args.__name__.removesuffix("Args") if named else "NoScheduler") + "Section",
            __base__=Open,
            __doc__=f"{what} {kind}" + (f" (the default {what})" if kind == default else ""),
            type=(type_ | None if kind == default else type_, Field(kind if kind == default else ...)),
            args=(Annotated[args, BeforeValidator(_empty_if_null)], Field(default_factory=dict, validate_default=True)),
        )
        members.append(Annotated[section, Tag(f"<{kind}>")])

    def pick(value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        kind = value.get("type", default)
        if default is not None and (kind is None or kind in nulls):
            kind = default
        return f"<{kind}>" if isinstance(kind, str) and kind in kinds else None

    allowed = ", ".join(kinds)
    return Annotated[
        _union(members),
        Discriminator(pick, custom_error_type="section_type", custom_error_message=f"{what} must be one of {allowed}"),
    ]


def _union(members: list[Any]) -> Any:
    union = members[0]
    for m in members[1:]:
        union = union | m
    return union
