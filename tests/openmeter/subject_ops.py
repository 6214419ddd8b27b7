"""The official client's subject-entitlement operations, which the client itself hides.

`openmeter==1.0.0b236` generates two classes named `SubjectsOperations`: the first holds
the deprecated `/api/v1/subjects/{subjectIdOrKey}/entitlements...` operations (post, list,
get, delete, override, reset, grants, value, history), the second the subject CRUD; the
client's `subjects` attribute is assigned both, so the second wins and the first is
unreachable. `subject_entitlements(client)` rebuilds the first class from the generated
module's own source, unchanged, with the first definitions of its request builders (shadowed too), in the
module's own namespace (models and deserializers), and binds it to the client's pipeline: the requests and parsing
are exactly the client's."""

from __future__ import annotations

import ast
import inspect
from functools import cache
from typing import Any, TypeVar

from openmeter._generated.operations import _operations

from openmeter import Client
from openmeter import models as m

__all__ = ("as_model", "entitlement", "subject_entitlements")

M = TypeVar("M")


@cache
def _first_subjects_class() -> type[Any]:
    source = inspect.getsource(_operations)
    tree = ast.parse(source)
    first = next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "SubjectsOperations"
    )
    # Its request builders are shadowed as well (`build_subjects_list_request` of the subject
    # CRUD replaces the entitlement listing's): the first definition of each is its own.
    builders: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("build_subjects_"):
            builders.setdefault(node.name, node)
    namespace = dict(vars(_operations))
    module = ast.Module(body=[*builders.values(), first], type_ignores=[])
    exec(compile(module, _operations.__file__ or "<openmeter>", "exec"), namespace)
    cls: type[Any] = namespace["SubjectsOperations"]
    assert hasattr(cls, "override"), "not the entitlement operations"
    return cls


def subject_entitlements(client: Client) -> Any:
    """The client's hidden first `SubjectsOperations`, on the client's own pipeline."""
    inner: Any = client
    return _first_subjects_class()(
        inner._client, inner._config, inner._serialize, inner._deserialize
    )


def as_model(model: type[M], body: Any) -> M:
    """An answer the client types as a union (`Entitlement`, `EntitlementV2`): its union
    deserializer hands back the JSON object itself. Read it as `model`, with every field the
    document requires of `model` present (nested models checked by the caller)."""
    assert isinstance(body, dict), body
    parsed = model(body)  # type: ignore[call-arg]  # a generated model takes a mapping
    fields: dict[str, Any] = type(parsed)._attr_to_rest_field  # type: ignore[attr-defined]
    missing = [
        f._rest_name for f in fields.values() if not f._is_optional and f._rest_name not in body
    ]
    assert missing == [], missing
    return parsed


_V1: dict[str, Any] = {"metered": m.EntitlementMetered, "static": m.EntitlementStatic,
                       "boolean": m.EntitlementBoolean}  # fmt: skip
_V2: dict[str, Any] = {"metered": m.EntitlementMeteredV2, "static": m.EntitlementStaticV2,
                       "boolean": m.EntitlementBooleanV2}  # fmt: skip


def entitlement(body: Any) -> Any:
    """An `Entitlement` (v1, with `subjectKey`) or `EntitlementV2` (with `customerId`) by its
    `type`, as `as_model` reads it."""
    assert isinstance(body, dict), body
    kinds = _V2 if "customerId" in body else _V1
    return as_model(kinds[body["type"]], body)
