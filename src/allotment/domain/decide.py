"""`decide`: what a command means for one customer, as facts and a reply. Pure: no I/O, no
clock, no mutation. The actor applies the facts with `evolve` in the same turn."""

from __future__ import annotations

from decimal import Decimal
from typing import assert_never

from allotment.domain.cancellation import cancel, revert_cancellation
from allotment.domain.checkout import close_checkout, link_stripe_customer, open_checkout
from allotment.domain.commands import (
    ApplyProviderPayment,
    CancelScheduledChange,
    CancelSubscription,
    ChangePlan,
    CloseCheckoutSession,
    Command,
    CommitReservation,
    EvaluateEntitlement,
    ExtendReservation,
    GrantCredits,
    LinkStripeCustomer,
    MarkInvoicePaid,
    OpenCheckoutSession,
    Preflight,
    RecordCloudEvent,
    RecordFailedPayment,
    RecordUnappliedPayment,
    RecordUsage,
    RegisterCustomer,
    ReleaseReservation,
    Reserve,
    RevertCancellation,
    SetOpenMeterDetails,
    Subscribe,
    Tick,
)
from allotment.domain.context import Outcome, TurnContext
from allotment.domain.credit_note_commands import (
    CreateCreditNote,
    CreditNoteCommand,
    FinalizeCreditNote,
    RecordRefund,
    VoidCreditNote,
)
from allotment.domain.credit_notes import decide_credit_note
from allotment.domain.entitlement import evaluate
from allotment.domain.facts import CustomerOpenMeterSet, CustomerProfileSet
from allotment.domain.grants import PoolDefaults, grant_facts
from allotment.domain.metering import record_usage
from allotment.domain.om_commands import (
    CreateEntitlement,
    DeleteEntitlement,
    IssueGrant,
    OpenMeterCommand,
    OverrideEntitlement,
    ReadAccess,
    ReadEntitlementValue,
    ResetEntitlement,
    VoidGrant,
)
from allotment.domain.om_decide import decide_openmeter
from allotment.domain.om_state import POOL_PREFIX
from allotment.domain.payments import apply_payment, record_failed_payment, record_unapplied_payment
from allotment.domain.plan_change import cancel_scheduled_change, change_plan
from allotment.domain.preflight import preflight
from allotment.domain.replies import Done, Rejected, RejectionKind
from allotment.domain.reservations import commit, extend, release, reserve
from allotment.domain.state import CustomerSource, CustomerState
from allotment.domain.subscriptions import mark_invoice_paid, subscribe

__all__ = ("decide",)


def decide(state: CustomerState, command: Command, ctx: TurnContext) -> Outcome:  # noqa: PLR0911 (one return per command)
    """Decide `command` against `state` at `ctx.now`. Due transitions must already be applied."""
    match command:
        case EvaluateEntitlement():
            return Outcome(
                evaluate(state, ctx.catalog, command.feature_key, command.requested_units)
            )
        case RecordUsage():
            return record_usage(state, command, ctx)
        case RecordCloudEvent():  # OM-8: kept as received; one with every CloudEvent's usage
            return Outcome(Done(), [command.event])
        # Next the turns an app runs around each expensive call (issue 14): a class pattern
        # costs a type check, and the commands are disjoint classes, so order is only speed.
        case (
            Reserve()
            | CommitReservation()
            | ReleaseReservation()
            | ExtendReservation()
            | Preflight()
        ):
            return _on_reservation(state, command, ctx)
        case Subscribe():
            return subscribe(state, command.plan_id, command.grace_period_days, ctx)
        case (
            MarkInvoicePaid()
            | CreateCreditNote()
            | FinalizeCreditNote()
            | VoidCreditNote()
            | RecordRefund()
        ):
            return _on_invoice(state, command, ctx)
        case RegisterCustomer() | GrantCredits():
            return _on_account(state, command, ctx)
        case CancelSubscription() | RevertCancellation() | ChangePlan() | CancelScheduledChange():
            return _on_subscription(state, command, ctx)
        case (
            LinkStripeCustomer()
            | OpenCheckoutSession()
            | CloseCheckoutSession()
            | ApplyProviderPayment()
            | RecordFailedPayment()
            | RecordUnappliedPayment()
        ):
            return _on_payment(state, command, ctx)
        case Tick():
            return Outcome(Done())
        case (
            SetOpenMeterDetails()
            | CreateEntitlement()
            | DeleteEntitlement()
            | OverrideEntitlement()
            | ResetEntitlement()
            | IssueGrant()
            | VoidGrant()
            | ReadEntitlementValue()
            | ReadAccess()
        ):
            return _on_openmeter(state, command, ctx)
        case _:
            assert_never(command)


def _on_openmeter(
    state: CustomerState,
    command: SetOpenMeterDetails | OpenMeterCommand,
    ctx: TurnContext,
) -> Outcome:
    """OpenMeter's writes (issue 16): the customer's OpenMeter details (OM-20..OM-24); and
    its entitlements and grants (issue 17, OM-80..)."""
    match command:
        case SetOpenMeterDetails():
            return Outcome(Done(), [CustomerOpenMeterSet(at=ctx.now, details=command.details)])
        case _:
            return decide_openmeter(state, command, ctx)


def _on_account(
    state: CustomerState, command: RegisterCustomer | GrantCredits, ctx: TurnContext
) -> Outcome:
    """A registration of the customer (CUS-5/CUS-6) and an administrative grant to it: one
    case of `decide`, which keeps its branches few now that CloudEvents come early in it."""
    if isinstance(command, RegisterCustomer):
        return _register(state, command, ctx)
    return _grant_credits(state, command, ctx)


def _on_invoice(
    state: CustomerState,
    command: MarkInvoicePaid | CreditNoteCommand,
    ctx: TurnContext,
) -> Outcome:
    """Settling an invoice (INV-20) and crediting it (issue 18, CN-*)."""
    if isinstance(command, MarkInvoicePaid):
        return mark_invoice_paid(state, command.invoice_id, ctx)
    return decide_credit_note(state, command, ctx)


def _on_reservation(
    state: CustomerState,
    command: Reserve | CommitReservation | ReleaseReservation | ExtendReservation | Preflight,
    ctx: TurnContext,
) -> Outcome:
    """RSV-1..RSV-20 (domain/reservations.py) and a reserving pre-flight (RSV-36)."""
    match command:
        case Reserve():
            return reserve(state, command, ctx)
        case CommitReservation():
            return commit(state, command, ctx)
        case ReleaseReservation():
            return release(state, command, ctx)
        case ExtendReservation():
            return extend(state, command, ctx)
        case Preflight():
            return preflight(state, command, ctx)
        case _:
            assert_never(command)


def _on_payment(
    state: CustomerState,
    command: LinkStripeCustomer
    | OpenCheckoutSession
    | CloseCheckoutSession
    | ApplyProviderPayment
    | RecordFailedPayment
    | RecordUnappliedPayment,
    ctx: TurnContext,
) -> Outcome:
    """Checkout bookkeeping (STR-*) and provider payments (MNY-C2..C4)."""
    match command:
        case LinkStripeCustomer():
            return link_stripe_customer(state, command.stripe_customer_id, ctx)
        case OpenCheckoutSession():
            return open_checkout(state, command.invoice_id, command.checkout, ctx)
        case CloseCheckoutSession():
            return close_checkout(state, command.invoice_id, command.session_id, ctx)
        case ApplyProviderPayment():
            return apply_payment(state, command.invoice_id, command.payment, ctx)
        case RecordFailedPayment():
            return record_failed_payment(state, command.invoice_id, command.payment, ctx)
        case RecordUnappliedPayment():
            return record_unapplied_payment(state, command.payment, command.reason, ctx)
        case _:
            assert_never(command)


def _on_subscription(
    state: CustomerState,
    command: CancelSubscription | RevertCancellation | ChangePlan | CancelScheduledChange,
    ctx: TurnContext,
) -> Outcome:
    sub = state.subscriptions.get(command.subscription_id)
    if sub is None:
        return Outcome(Rejected(kind=RejectionKind.NOT_FOUND, message="Subscription not found."))
    match command:
        case CancelSubscription():
            return cancel(state, sub, command.mode, ctx)
        case RevertCancellation():
            return revert_cancellation(sub, ctx)
        case ChangePlan():
            return change_plan(state, sub, command.to_plan_id, command.change_type, ctx)
        case CancelScheduledChange():
            return cancel_scheduled_change(sub, ctx)
        case _:
            assert_never(command)


def _register(state: CustomerState, command: RegisterCustomer, ctx: TurnContext) -> Outcome:
    """CUS-5/CUS-6: a second registration conflicts; an auto-created customer gets its profile."""
    if state.source is CustomerSource.API:
        return Outcome(Rejected(kind=RejectionKind.CONFLICT, message="Customer already exists."))
    fact = CustomerProfileSet(at=ctx.now, external_id=command.external_id, profile=command.profile)
    return Outcome(Done(), [fact])


def _grant_credits(state: CustomerState, command: GrantCredits, ctx: TurnContext) -> Outcome:
    """An administrative grant (PURCHASE, PROMOTION, MANUAL) into the denomination's pool."""
    if command.expires_at is not None and command.expires_at <= ctx.now:
        return Outcome(
            Rejected(kind=RejectionKind.INVALID, message="expiresAt: must be in the future.")
        )
    if command.denomination.startswith(POOL_PREFIX):  # OM-87: only OpenMeter grants go there
        return Outcome(
            Rejected(
                kind=RejectionKind.INVALID,
                message="denomination: an OpenMeter entitlement's pool takes its own grants.",
            )
        )
    pool = state.pools.get(command.denomination)
    if pool is not None and pool.status == "ARCHIVED":
        return Outcome(
            Rejected(kind=RejectionKind.INVALID, message="denomination: the pool is archived.")
        )
    model = ctx.catalog.model_for_denomination(command.denomination)
    defaults = (
        PoolDefaults.from_model(model, model.currency, None)
        if model is not None
        else PoolDefaults("USD", None)
    )
    balances: dict[str, Decimal] = {}
    facts = grant_facts(
        state,
        ctx,
        command.denomination,
        command.amount,
        command.source,
        defaults,
        balances,
        expires_at=command.expires_at,
    )
    return Outcome(Done(), facts)
