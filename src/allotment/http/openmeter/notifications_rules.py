"""Notification rules (OM-141): `GET/POST /api/v1/notification/rules`, `GET/PUT/DELETE
/api/v1/notification/rules/{ruleId}`, of the types `entitlements.balance.threshold` and
`entitlements.reset`. A rule is environment configuration, journalled as a catalog fact
(`NotificationRuleSet`) before the reply, so every customer's turn decides against it.
Admin keys only. The rule's test is in `notifications_events.py`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from litestar import Response, delete, get, post, put
from litestar.params import FromPath

from allotment.domain.catalog import Catalog
from allotment.domain.context import TurnContext
from allotment.domain.meter_rules import CatalogRefused
from allotment.domain.meters import ulid
from allotment.domain.om_notify import check_rule, delete_rule, feature_key_of
from allotment.domain.om_notify_rules import NotificationRule, RuleKind, Threshold
from allotment.http.auth import api_key_of
from allotment.http.context import AnyRequest, shard_of
from allotment.http.openmeter.meters import refused
from allotment.http.openmeter.notifications_wire import ADMIN, RuleBody, rule_json
from allotment.http.openmeter.problems import PROBLEMS, bad_request, not_found
from allotment.http.openmeter.wire import Page, decode, flag, json, order_and_page
from allotment.http.routes.webhook_endpoints import webhooks_of
from allotment.webhooks.ports import WebhookRefused

__all__ = (
    "create_rule",
    "delete_rule_route",
    "get_rule",
    "list_rules",
    "live_rule",
    "update_rule",
)

_KINDS: Final = {kind.value: kind for kind in RuleKind}
_SORT: Final = {
    "id": lambda r: r.id,
    "type": lambda r: r.kind.value,
    "createdAt": lambda r: r.created_at,
    "updatedAt": lambda r: r.updated_at,
}


@get(
    "/notification/rules",
    operation_id="listNotificationRules",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="List notification rules",
)
async def list_rules(request: AnyRequest) -> Response[Any]:
    """Rules of the environment, filtered by `feature` and `channel` (any of them); deleted
    ones with `includeDeleted`, disabled ones with `includeDisabled`; a page object."""
    query = dict(request.query_params)
    deleted, disabled = flag(query, "includeDeleted"), flag(query, "includeDisabled")
    features = set(request.query_params.getall("feature", []))
    channels = set(request.query_params.getall("channel", []))
    catalog = shard_of(request).catalog
    keys = {feature_key_of(catalog, f) or f for f in features}
    rules = [
        r for r in catalog.notification_rules.values()
        if (deleted or r.deleted_at is None) and (disabled or not r.disabled)
        and (not keys or keys & set(r.features)) and (not channels or channels & set(r.channels))
    ]  # fmt: skip
    page, number, size = order_and_page(rules, _SORT, query, "id")
    items = [rule_json(r) for r in page]
    return json(Page(totalCount=len(rules), page=number, pageSize=size, items=items))


@post(
    "/notification/rules",
    operation_id="createNotificationRule",
    opt=ADMIN,
    responses=PROBLEMS,
    status_code=201,
    summary="Create a notification rule",
)
async def create_rule(request: AnyRequest) -> Response[Any]:
    """A new rule (OM-141): 400 naming an unknown channel (`channels[i]`), an unknown
    feature (`features[i]`) or a bad threshold (`thresholds[i].value`); nothing written."""
    body = await _body(request)
    made: list[str] = []  # the new rule's id, minted in the turn

    def change(catalog: Catalog, ctx: TurnContext) -> Any:
        made.append(ulid(ctx.now, ctx.new_id()))
        return check_rule(catalog, _rule(body, made[-1], ctx))

    catalog = await _change(request, change)
    return json(rule_json(catalog.notification_rules[made[-1]]), 201)


@get(
    "/notification/rules/{rule_id:str}",
    operation_id="getNotificationRule",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="Get a notification rule",
)
async def get_rule(request: AnyRequest, rule_id: FromPath[str]) -> Response[Any]:
    """A rule by id, deleted ones too (with `deletedAt`)."""
    rule = shard_of(request).catalog.notification_rules.get(rule_id)
    if rule is None:
        raise not_found("notification rule", rule_id)
    return json(rule_json(rule))


@put(
    "/notification/rules/{rule_id:str}",
    operation_id="updateNotificationRule",
    opt=ADMIN,
    responses=PROBLEMS,
    summary="Update a notification rule",
)
async def update_rule(request: AnyRequest, rule_id: FromPath[str]) -> Response[Any]:
    """Replace a live rule's fields; its type never changes (400 `type`)."""
    body = await _body(request)

    def change(catalog: Catalog, ctx: TurnContext) -> Any:
        current = live_rule(catalog, rule_id)
        if current.kind.value != body.type:
            raise CatalogRefused(400, "type", f"the rule is of type {current.kind.value}")
        return check_rule(catalog, _rule(body, rule_id, ctx, created_at=current))

    catalog = await _change(request, change)
    return json(rule_json(catalog.notification_rules[rule_id]))


@delete(
    "/notification/rules/{rule_id:str}",
    operation_id="deleteNotificationRule",
    opt=ADMIN,
    responses=PROBLEMS,
    status_code=204,
    summary="Delete a notification rule",
)
async def delete_rule_route(request: AnyRequest, rule_id: FromPath[str]) -> None:
    """Soft: the rule answers with `deletedAt` and raises nothing more."""
    await _change(request, lambda catalog, ctx: delete_rule(catalog, rule_id, ctx.now))


def live_rule(catalog: Catalog, rule_id: str) -> NotificationRule:
    """Raises: CatalogRefused: 404, no such rule, or it is deleted."""
    rule = catalog.notification_rules.get(rule_id)
    if rule is None or rule.deleted_at is not None:
        raise CatalogRefused(404, "ruleId", f"notification rule {rule_id!r} not found")
    return rule


async def _body(request: AnyRequest) -> RuleBody:
    """The body, with its type supported and every channel a live channel of the caller's
    environment (the domain never sees channels: they are webhook endpoints)."""
    body = decode(await request.body(), RuleBody)
    if body.type not in _KINDS:
        raise bad_request("type", f"must be one of {', '.join(_KINDS)}: invoices notify "
                          "through allotment's own webhooks (docs/webhooks.md)")  # fmt: skip
    environment = api_key_of(request.scope).environment
    webhooks = webhooks_of(request)
    for index, channel in enumerate(body.channels):
        try:
            found = await webhooks.get_channel(environment, channel)
        except WebhookRefused:
            raise bad_request(f"channels[{index}]", f"no channel {channel!r}") from None
        if found.deleted_at is not None:
            raise bad_request(f"channels[{index}]", f"channel {channel!r} is deleted")
    return body


def _rule(
    body: RuleBody, rule_id: str, ctx: TurnContext, created_at: NotificationRule | None = None
) -> NotificationRule:
    thresholds = tuple(Threshold(value=t.value, kind=t.type) for t in body.thresholds or ())
    return NotificationRule(
        id=rule_id, kind=_KINDS[body.type], name=body.name,
        channels=tuple(dict.fromkeys(body.channels)), thresholds=thresholds,
        features=tuple(body.features or ()), disabled=body.disabled, metadata=body.metadata,
        created_at=created_at.created_at if created_at else ctx.now, updated_at=ctx.now,
    )  # fmt: skip


async def _change(request: AnyRequest, change: Callable[[Catalog, TurnContext], Any]) -> Catalog:
    try:
        catalog: Catalog = await shard_of(request).change_catalog(change)
    except CatalogRefused as error:
        raise refused(error) from None
    return catalog
