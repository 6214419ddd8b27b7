"""`evolve`: apply one fact to the customer state. Total, deterministic and safe to replay.

It is the only code that changes a `CustomerState`.
"""

from __future__ import annotations

import bisect
import uuid
from typing import assert_never

import msgspec

from allotment.domain.credit_note_evolve import CreditNoteFact, evolve_credit_note
from allotment.domain.credits import (
    RECENT_TRANSACTIONS_MAX,
    CreditGrant,
    CreditPool,
    CreditTransaction,
    PoolStatus,
    TransactionType,
    burn_order_key,
)
from allotment.domain.facts import (
    CheckoutClosed,
    CheckoutOpened,
    CloudEventRecorded,
    CreditNoteCreated,
    CreditNoteFinalized,
    CreditNoteVoided,
    CreditPoolOpened,
    CreditsDebited,
    CreditsExpired,
    CreditsGranted,
    CreditsRestored,
    CreditsReversed,
    CustomerCreated,
    CustomerOpenMeterSet,
    CustomerProfileSet,
    EntitlementCreated,
    EntitlementDeleted,
    EntitlementReset,
    EntitlementUsed,
    Fact,
    GrantActivated,
    GrantIssued,
    GrantRecurred,
    GrantVoided,
    InvoiceIssued,
    InvoiceNumbered,
    InvoiceRevised,
    InvoiceStatusChanged,
    NotificationRaised,
    PaymentRecorded,
    RefundRequested,
    RefundSettled,
    StripeCustomerLinked,
    SubscriptionChanged,
    SubscriptionStarted,
    UsageBilled,
    UsageRecorded,
)
from allotment.domain.money import ZERO
from allotment.domain.notification_types import remember
from allotment.domain.om_evolve import evolve_openmeter, record_entitlement_usage
from allotment.domain.reservation_evolve import evolve_reservation
from allotment.domain.reservation_facts import (
    ReservationCommitted,
    ReservationExpired,
    ReservationExtended,
    ReservationHeld,
    ReservationReleased,
)
from allotment.domain.schedule import next_due, next_due_after_hold
from allotment.domain.state import (
    PAYABLE,
    AccessState,
    CustomerSource,
    CustomerState,
    UsageCounter,
)
from allotment.domain.subscriptions import derive_access

__all__ = ("evolve", "new_customer")


def new_customer(fact: CustomerCreated) -> CustomerState:
    """The state of a customer that exists from `fact` on."""
    return CustomerState(
        id=fact.customer_id,
        external_id=fact.external_id,
        source=fact.source,
        created_at=fact.at,
        modified_at=fact.at,
        profile=fact.profile,
        stripe_customer_id=fact.stripe_customer_id,
    )


def evolve(state: CustomerState, fact: Fact) -> None:
    """Apply `fact` to `state` in place."""
    match fact:
        case UsageRecorded():
            _record_usage(state, fact)
            return  # the hot path: no modifiedAt churn, no schedule change
        case CreditsDebited():
            _debit(state, fact.denomination, fact.transaction)
            return
        case NotificationRaised():
            remember(state.notices, fact.payload)  # WHK-E2, WHK-E12: each fires once
            return
        case EntitlementUsed():
            record_entitlement_usage(state, fact)  # OM-92: per event, like UsageRecorded
            return
        case CloudEventRecorded():
            return  # OM-8: listed and queried from the journal; usage it makes is its own fact
        # Then the facts of a reserve and its commit, before the rarer ones (facts are
        # disjoint classes, so the order of the cases is only speed: each tried case costs an
        # isinstance).
        case (
            ReservationHeld()
            | ReservationCommitted()
            | ReservationReleased()
            | ReservationExtended()
            | ReservationExpired()
        ):
            before = state.hold_expiries.get(fact.reservation_id)
            evolve_reservation(state, fact)  # RSV-25
            state.modified_at = fact.at
            after = state.hold_expiries.get(fact.reservation_id)
            state.next_due_at = next_due_after_hold(state, before, after)
            return
        case (
            EntitlementCreated()
            | EntitlementDeleted()
            | EntitlementReset()
            | GrantIssued()
            | GrantActivated()
            | GrantVoided()
            | GrantRecurred()
            | CreditsRestored()
        ):
            evolve_openmeter(state, fact)
        case CustomerOpenMeterSet():
            state.openmeter = fact.details
        case CustomerCreated():
            raise AssertionError("CustomerCreated starts a state; use new_customer")
        case StripeCustomerLinked() | CheckoutOpened() | CheckoutClosed() | PaymentRecorded():
            _evolve_checkout(state, fact)
        case CreditPoolOpened() | CreditsGranted() | CreditsExpired() | CreditsReversed():
            _evolve_credits(state, fact)
        case _:
            _evolve_billing(state, fact)
    state.modified_at = fact.at
    state.next_due_at = next_due(state)


def _evolve_checkout(
    state: CustomerState,
    fact: StripeCustomerLinked | CheckoutOpened | CheckoutClosed | PaymentRecorded,
) -> None:
    match fact:
        case StripeCustomerLinked():
            state.stripe_customer_id = fact.stripe_customer_id
        case CheckoutOpened():
            state.checkouts[fact.invoice_id] = fact.checkout
        case CheckoutClosed():
            del state.checkouts[fact.invoice_id]
            generation = state.checkout_generation.get(fact.invoice_id, 0)
            state.checkout_generation[fact.invoice_id] = generation + 1
        case PaymentRecorded():
            state.payments[fact.record.payment.session_id] = fact.record
        case _:
            assert_never(fact)


def _evolve_credits(
    state: CustomerState, fact: CreditPoolOpened | CreditsGranted | CreditsExpired | CreditsReversed
) -> None:
    match fact:
        case CreditPoolOpened():
            state.pools[fact.denomination] = CreditPool(
                id=fact.pool_id,
                customer_id=state.id,
                denomination=fact.denomination,
                name=fact.name,
                currency=fact.currency,
                hard_limit=fact.hard_limit,
                rollover_policy=fact.rollover_policy,
                rollover_cap=fact.rollover_cap,
                status=PoolStatus.ACTIVE,
                created_at=fact.at,
                modified_at=fact.at,
            )
        case CreditsGranted():
            _grant(state, fact)
        case CreditsExpired() | CreditsReversed():
            _debit(state, fact.denomination, fact.transaction)
        case _:
            assert_never(fact)


def _evolve_billing(
    state: CustomerState,
    fact: CustomerProfileSet
    | SubscriptionStarted
    | SubscriptionChanged
    | InvoiceIssued
    | InvoiceRevised
    | InvoiceStatusChanged
    | UsageBilled
    | CreditNoteFact,
) -> None:
    match fact:
        case CustomerProfileSet():
            state.external_id = fact.external_id
            state.profile = fact.profile
            state.source = CustomerSource.API
        case SubscriptionStarted() | SubscriptionChanged():
            state.subscriptions[fact.subscription.id] = fact.subscription
            _refresh_access(state, fact.subscription.id, fact)
        case InvoiceIssued() | InvoiceRevised():
            state.invoices[fact.invoice.id] = fact.invoice
            _refresh_access(state, fact.invoice.subscription_id, fact)
        case InvoiceStatusChanged():
            invoice = state.invoices[fact.invoice_id]
            state.invoices[invoice.id] = msgspec.structs.replace(
                invoice, status=fact.status, modified_at=fact.at
            )
            if fact.status not in PAYABLE:  # a paid or voided invoice needs no checkout
                state.checkouts.pop(invoice.id, None)
            _refresh_access(state, invoice.subscription_id, fact)
        case UsageBilled():
            counter = state.usage[fact.subscription_id][fact.feature_key]
            for start in [s for s in counter.unbilled if s < fact.through]:
                quantity = counter.unbilled.pop(start)
                counter.billed[start] = counter.billed.get(start, ZERO) + quantity  # MNY-B1
        case (
            CreditNoteCreated()
            | CreditNoteFinalized()
            | CreditNoteVoided()
            | InvoiceNumbered()
            | RefundRequested()
            | RefundSettled()
        ):
            evolve_credit_note(state, fact)  # issue 18: notes, ledgers and numbers only
        case _:
            assert_never(fact)


def _record_usage(state: CustomerState, fact: UsageRecorded) -> None:
    state.last_event_at = fact.at
    if fact.credit_pool is not None and fact.credit_remainder is not None:
        remainders = state.pools[fact.credit_pool].remainders
        assert fact.feature_key is not None
        if fact.credit_remainder:
            remainders[fact.feature_key] = fact.credit_remainder
        else:
            remainders.pop(fact.feature_key, None)
    if fact.subscription_id is None or fact.period_start is None or fact.feature_key is None:
        return
    counters = state.usage.setdefault(fact.subscription_id, {})
    counter = counters.get(fact.feature_key)
    if counter is None:
        counter = counters[fact.feature_key] = UsageCounter()
    bucket = fact.period_start
    if fact.before_start:  # MNY-B6: billed with the first period, counted toward no limit
        counter.early += fact.units
        counter.used.setdefault(bucket, ZERO)
    else:
        counter.used[bucket] = counter.used.get(bucket, ZERO) + fact.units
    if fact.billable_units:
        counter.unbilled[bucket] = counter.unbilled.get(bucket, ZERO) + fact.billable_units


def _refresh_access(state: CustomerState, subscription_id: uuid.UUID, fact: Fact) -> None:
    sub = state.subscriptions.get(subscription_id)
    if sub is None:
        return
    access = derive_access(sub, state.invoices.values())
    if access is not sub.access:
        restored = access is AccessState.ACTIVE  # MNY-A5: catch-up invoices are due from here
        state.subscriptions[sub.id] = msgspec.structs.replace(
            sub,
            access=access,
            modified_at=fact.at,
            active_since=fact.at if restored else sub.active_since,
        )


def _grant(state: CustomerState, fact: CreditsGranted) -> None:
    pool = state.pools[fact.denomination]
    grant = CreditGrant(
        id=fact.grant_id,
        amount=fact.amount,
        remaining=fact.amount,
        source=fact.source,
        subscription_id=fact.subscription_id,
        granted_at=fact.at,
        expires_at=fact.expires_at,
        priority=fact.priority,
    )
    bisect.insort(pool.grants, grant, key=burn_order_key)
    pool.balance += fact.amount
    pool.total_granted += fact.amount
    if pool.status is PoolStatus.DEPLETED and pool.balance > 0:
        pool.status = PoolStatus.ACTIVE
    _remember(pool, fact.transaction)
    ledger_key = fact.period_key or fact.top_up_key
    if ledger_key is not None and fact.subscription_id is not None:
        sub = state.subscriptions[fact.subscription_id]
        granted = dict(sub.allocation_granted)
        granted[ledger_key] = granted.get(ledger_key, ZERO) + fact.amount
        periods = sub.credit_periods_granted
        if fact.period_key is not None:
            periods = periods | {fact.period_key}
        state.subscriptions[sub.id] = msgspec.structs.replace(
            sub, credit_periods_granted=periods, allocation_granted=granted
        )


def _debit(state: CustomerState, denomination: str, transaction: CreditTransaction) -> None:
    """A DEBIT or EXPIRATION: the amount leaves one grant."""
    pool = state.pools[denomination]
    amount = -transaction.amount
    for index, grant in enumerate(pool.grants):
        if grant.id == transaction.grant_id:
            grant.remaining -= amount
            if grant.remaining <= 0:
                del pool.grants[index]  # spent grants live on in the ledger only
                if grant.expires_at is not None:
                    state.next_due_at = next_due(state)  # its expiry is no longer due
            break
    else:
        raise AssertionError(f"grant {transaction.grant_id} is not live in pool {pool.id}")
    pool.balance -= amount
    if transaction.type is TransactionType.EXPIRATION:
        pool.total_expired += amount
    elif transaction.type is TransactionType.REVERSAL:
        pool.total_reversed += amount
    else:
        pool.total_consumed += amount
    if pool.balance <= 0 and pool.status is PoolStatus.ACTIVE:
        pool.status = PoolStatus.DEPLETED
    pool.modified_at = transaction.created_at
    _remember(pool, transaction)


def _remember(pool: CreditPool, transaction: CreditTransaction) -> None:
    pool.recent_transactions.append(transaction)
    if len(pool.recent_transactions) > RECENT_TRANSACTIONS_MAX:
        del pool.recent_transactions[0]
    pool.modified_at = transaction.created_at
