"""Which shard an id names, in O(1) (SCL-5..SCL-9): computed from the id itself where a shard
minted it or a reference id places it, and from what this router saw placed for the few keys
chosen outside allotment (Stripe customer ids, reservation ids, CloudEvent subjects)."""

from __future__ import annotations

import contextlib
import itertools
import uuid

from allotment.domain.om_views import parse_derived_id
from allotment.runtime.placement import placement_tag, shard_of, tag_of_id, tag_of_ulid
from allotment.runtime.ports import CustomerLookup, OmTarget

__all__ = ("KeyedRoutes",)

_UUID_TEXT_MIN = 32  # the shortest text `uuid.UUID` parses (hex digits only)


class KeyedRoutes:
    """The shard of every id a route can receive, for one environment over `shards`."""

    def __init__(self, environment: str, shards: int) -> None:
        self.environment = environment
        self.shards = shards
        # SCL-7: keys chosen outside allotment, as placed through this router (or found once).
        self.stripe: dict[str, int] = {}
        self.reservations: dict[str, int] = {}
        self.subjects: dict[str, int] = {}
        self.searches = 0  # SCL-8: keys asked of every shard (the tests assert on it)
        self._spread = itertools.cycle(range(shards))  # keyless customers (SCL-5)

    def of_reference(self, reference: str) -> int:
        """SCL-2: a customer's shard from its reference id (`customerReferenceId`, key)."""
        return shard_of(placement_tag(self.environment, reference), self.shards)

    def of_id(self, entity_id: uuid.UUID) -> int:
        """SCL-3: the shard of a minted id: customer, subscription, invoice, credit note."""
        return shard_of(tag_of_id(entity_id), self.shards)

    def of_lookup(self, lookup: CustomerLookup) -> int | None:
        if lookup.external_id is not None:
            return self.of_reference(lookup.external_id)
        if lookup.customer_id is not None:
            return self.of_id(lookup.customer_id)
        assert lookup.stripe_customer_id is not None
        return self.stripe.get(lookup.stripe_customer_id)

    def home_of(self, key: str) -> int:
        """SCL-80: the home shard of a key the environment holds once (an event key, a
        CloudEvent's, a reservation id's): its hash's, as a reference id's, in its own space."""
        return shard_of(placement_tag(self.environment, "\x1fkey:" + key), self.shards)

    def of_new_customer(self, key: str | None) -> int:
        """SCL-5: a keyless customer goes to the next shard in turn, which mints it a tag
        that places it there."""
        return self.of_reference(key) if key is not None else next(self._spread)

    def of_subject(self, subject: str) -> int:
        """SCL-6: a CloudEvent subject's shard: where its customer was created with it, else
        where a customer keyed by it lives (OpenMeter's default subject is the key)."""
        index = self.subjects.get(subject)
        return index if index is not None else self.of_id_or_key(subject)

    def of_id_or_key(self, text: str) -> int:
        """`customerIdOrKey`: an allotment customer id, else a key (as runtime/om_desk.py)."""
        if len(text) >= _UUID_TEXT_MIN:
            with contextlib.suppress(ValueError):
                return self.of_id(uuid.UUID(text))
        return self.of_reference(text)

    def of_om_target(self, target: OmTarget) -> int:
        if target.entitlement_id is not None:
            derived = parse_derived_id(target.entitlement_id)  # OM-151: a subscription's view
            if derived is not None:
                return self.of_id(derived[0])
            return self._of_ulid(target.entitlement_id)
        if target.grant_id is not None:
            return self._of_ulid(target.grant_id)
        if target.subject is not None:
            return self.of_subject(target.subject)
        assert target.customer is not None
        return self.of_id_or_key(target.customer)

    def _of_ulid(self, text: str) -> int:
        tag = tag_of_ulid(text)
        return 0 if tag is None else shard_of(tag, self.shards)  # not ours: shard 0 says 404
