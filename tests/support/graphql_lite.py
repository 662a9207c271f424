"""Just enough GraphQL for the Shopify stand-in: a parser of documents (operations, variables,
fragments, inline fragments, aliases, arguments, `@include`/`@skip`), an executor that answers
exactly the fields asked from plain Python values, and Shopify's query cost.

Values are dicts (objects, `__typename` naming their type), lists and scalars; a field that takes
arguments (a connection, a lookup) is a callable given the evaluated arguments. Asking for a field
an object does not have is an error, as it is with Shopify: the stand-in's objects hold the real
fields, so an adapter asking for a misspelt or removed one fails here too.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,]+|\#[^\n]*)
    | (?P<spread>\.\.\.)
    | (?P<punct>[{}()\[\]:=!$@])
    | (?P<string>"(?:\\.|[^"\\])*")
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE,
)


class GraphQLError(Exception):
    def __init__(self, message: str, *, code: str, path: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.path = path or []

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"message": str(self), "extensions": {"code": self.code}}
        if self.path:
            found["path"] = self.path
        return found


@dataclass(frozen=True)
class Var:
    name: str


class Enum(str):
    """An enum value written in the document (`sortKey: TITLE`)."""


@dataclass
class Field:
    alias: str
    name: str
    args: dict[str, Any]
    directives: dict[str, dict[str, Any]]
    selections: list[Any]


@dataclass
class Spread:
    name: str
    directives: dict[str, dict[str, Any]]


@dataclass
class Inline:
    on: str | None
    directives: dict[str, dict[str, Any]]
    selections: list[Any]


@dataclass
class Operation:
    kind: str
    name: str | None
    variables: dict[str, tuple[str, Any]]
    selections: list[Any]


@dataclass
class Document:
    operations: list[Operation] = field(default_factory=list)
    fragments: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)

    def operation(self, name: str | None) -> Operation:
        if name is not None:
            for op in self.operations:
                if op.name == name:
                    return op
            raise GraphQLError(f"No operation named '{name}'", code="missingOperation")
        if len(self.operations) != 1:
            raise GraphQLError("An operation name is required", code="missingOperationName")
        return self.operations[0]


# --- parsing ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None:
                raise GraphQLError(f"Parse error on '{text[position]}'", code="parseError")
            position = match.end()
            kind = match.lastgroup or ""
            if kind != "skip":
                self.tokens.append((kind, match.group()))
        self.at = 0

    def peek(self, value: str | None = None) -> bool:
        if self.at >= len(self.tokens):
            return False
        return value is None or self.tokens[self.at][1] == value

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if self.at >= len(self.tokens):
            raise GraphQLError("Parse error: unexpected end of document", code="parseError")
        token_kind, token = self.tokens[self.at]
        if (value is not None and token != value) or (kind is not None and token_kind != kind):
            raise GraphQLError(f'Parse error on "{token}"', code="parseError")
        self.at += 1
        return token

    def document(self) -> Document:
        document = Document()
        while self.peek():
            if self.peek("fragment"):
                self.take()
                name = self.take(kind="name")
                self.take("on")
                document.fragments[name] = (self.take(kind="name"), self.selection_set())
            elif self.peek("{"):
                document.operations.append(Operation("query", None, {}, self.selection_set()))
            else:
                kind = self.take()
                if kind not in ("query", "mutation"):
                    raise GraphQLError(f'Parse error on "{kind}"', code="parseError")
                named = not self.peek("(") and not self.peek("{")
                operation = self.take(kind="name") if named else None
                variables = self.variable_definitions()
                self.directives()
                document.operations.append(
                    Operation(kind, operation, variables, self.selection_set())
                )
        return document

    def variable_definitions(self) -> dict[str, tuple[str, Any]]:
        found: dict[str, tuple[str, Any]] = {}
        if not self.peek("("):
            return found
        self.take("(")
        while not self.peek(")"):
            self.take("$")
            name = self.take(kind="name")
            self.take(":")
            kind = self.type_reference()
            default = None
            if self.peek("="):
                self.take("=")
                default = self.value()
            found[name] = (kind, default)
        self.take(")")
        return found

    def type_reference(self) -> str:
        if self.peek("["):
            self.take("[")
            inner = self.type_reference()
            self.take("]")
            kind = f"[{inner}]"
        else:
            kind = self.take(kind="name")
        if self.peek("!"):
            self.take("!")
            kind += "!"
        return kind

    def directives(self) -> dict[str, dict[str, Any]]:
        found = {}
        while self.peek("@"):
            self.take("@")
            found[self.take(kind="name")] = self.arguments()
        return found

    def selection_set(self) -> list[Any]:
        self.take("{")
        selections: list[Any] = []
        while not self.peek("}"):
            if self.peek("..."):
                self.take("...")
                if self.peek("on") or self.peek("{") or self.peek("@"):
                    on = None
                    if self.peek("on"):
                        self.take("on")
                        on = self.take(kind="name")
                    directives = self.directives()
                    selections.append(Inline(on, directives, self.selection_set()))
                else:
                    selections.append(Spread(self.take(kind="name"), self.directives()))
                continue
            alias = name = self.take(kind="name")
            if self.peek(":"):
                self.take(":")
                name = self.take(kind="name")
            args = self.arguments()
            directives = self.directives()
            children = self.selection_set() if self.peek("{") else []
            selections.append(Field(alias, name, args, directives, children))
        self.take("}")
        return selections

    def arguments(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if not self.peek("("):
            return found
        self.take("(")
        while not self.peek(")"):
            name = self.take(kind="name")
            self.take(":")
            found[name] = self.value()
        self.take(")")
        return found

    def value(self) -> Any:
        kind, token = self.tokens[self.at] if self.at < len(self.tokens) else ("", "")
        if token == "$":
            self.take("$")
            return Var(self.take(kind="name"))
        if token == "[":
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value())
            self.take("]")
            return items
        if token == "{":
            self.take("{")
            fields = {}
            while not self.peek("}"):
                name = self.take(kind="name")
                self.take(":")
                fields[name] = self.value()
            self.take("}")
            return fields
        self.take()
        if kind == "string":
            return json.loads(token)
        if kind == "number":
            return float(token) if any(c in token for c in ".eE") else int(token)
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(token, Enum(token))
        raise GraphQLError(f'Parse error on "{token}"', code="parseError")


def parse(text: str) -> Document:
    return _Parser(text).document()


# --- executing ----------------------------------------------------------------------------------


def evaluate(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, Var):
        return variables.get(value.name)
    if isinstance(value, list):
        return [evaluate(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: evaluate(item, variables) for key, item in value.items()}
    return value


class Executor:
    """Answers one operation of a document with the variables given."""

    def __init__(self, document: Document, variables: dict[str, Any]) -> None:
        self.document = document
        self.variables = variables

    def _included(self, directives: dict[str, dict[str, Any]]) -> bool:
        if "include" in directives and not evaluate(directives["include"]["if"], self.variables):
            return False
        return not ("skip" in directives and evaluate(directives["skip"]["if"], self.variables))

    def fields(self, selections: list[Any], typename: str | None) -> list[Field]:
        """The fields selected on an object of `typename` (fragments of other types left out)."""
        found: list[Field] = []
        for selection in selections:
            if not self._included(selection.directives):
                continue
            if isinstance(selection, Field):
                found.append(selection)
            elif isinstance(selection, Inline):
                if selection.on is None or _applies(selection.on, typename):
                    found += self.fields(selection.selections, typename)
            else:
                if selection.name not in self.document.fragments:
                    raise GraphQLError(
                        f"Fragment {selection.name} was used, but not defined",
                        code="useAndDefineFragment",
                    )
                on, inner = self.document.fragments[selection.name]
                if _applies(on, typename):
                    found += self.fields(inner, typename)
        return found

    def answer(self, value: Any, selections: list[Any], path: list[str]) -> tuple[Any, int]:
        """The value shaped by the selections, and its actual cost (objects returned)."""
        if value is None:
            return None, 0
        if isinstance(value, list):
            items = [self.answer(item, selections, path) for item in value]
            return [a for a, _ in items], sum(c for _, c in items)
        if not isinstance(value, dict):
            if selections:
                raise GraphQLError(
                    f"Selections can't be made on scalars (field '{path[-1]}')",
                    code="selectionMismatch",
                    path=path,
                )
            return value, 0
        if not selections:
            raise GraphQLError(
                f"Field must have selections (field '{path[-1]}' returns an object)",
                code="selectionMismatch",
                path=path,
            )
        typename = value.get("__typename")
        answered: dict[str, Any] = {}
        cost = 1
        for selected in self.fields(selections, typename):
            if selected.name == "__typename":
                answered[selected.alias] = typename
                continue
            if selected.name not in value:
                raise GraphQLError(
                    f"Field '{selected.name}' doesn't exist on type '{typename}'",
                    code="undefinedField",
                    path=[*path, selected.name],
                )
            found = value[selected.name]
            if callable(found):
                found = found(evaluate(selected.args, self.variables))
            answered[selected.alias], inner = self.answer(
                found, selected.selections, [*path, selected.alias]
            )
            cost += inner
        return answered, cost


# Interfaces a fragment may be written on: `... on Media` applies to a MediaImage.
INTERFACES: dict[str, tuple[str, ...]] = {
    "MediaImage": ("Media", "Node"),
    "Product": ("Node",),
    "ProductVariant": ("Node",),
    "DiscountCodeBasic": ("DiscountCode",),
}


def _applies(on: str, typename: str | None) -> bool:
    return typename is None or on == typename or on in INTERFACES.get(typename, ())


def requested_cost(executor: Executor, selections: list[Any], *, mutation: bool = False) -> int:
    """Shopify's requested cost: a scalar 0, an object 1, a connection 2 + first x its node,
    a mutation 10; fragments of every type counted (an upper bound, as Shopify's)."""
    cost = 0
    for selected in _all_fields(executor, selections):
        if mutation:
            cost += 10 + requested_cost(executor, selected.selections)
            continue
        if not selected.selections:
            continue
        args = evaluate(selected.args, executor.variables)
        size = args.get("first") or args.get("last")
        if isinstance(size, int):
            cost += 2 + size * _node_cost(executor, selected.selections)
        else:
            cost += 1 + requested_cost(executor, selected.selections)
    return cost


def _node_cost(executor: Executor, selections: list[Any]) -> int:
    cost = 0
    for selected in _all_fields(executor, selections):
        if selected.name == "nodes":
            cost = max(cost, 1 + requested_cost(executor, selected.selections))
        elif selected.name == "edges":
            cost = max(cost, requested_cost(executor, selected.selections))
    return cost


def _all_fields(executor: Executor, selections: list[Any]) -> list[Field]:
    found: list[Field] = []
    for selection in selections:
        if isinstance(selection, Field):
            found.append(selection)
        elif isinstance(selection, Inline):
            found += _all_fields(executor, selection.selections)
        elif selection.name in executor.document.fragments:
            found += _all_fields(executor, executor.document.fragments[selection.name][1])
    return found
