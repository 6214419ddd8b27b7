"""The digests `KeyStore.authenticate` remembers for keys that authenticated never let a key
through that the store no longer accepts."""

from __future__ import annotations

from pathlib import Path

from allotment.persistence.keys import KeyStore


def test_a_remembered_key_revoked_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "api_keys.json")
    key, record = store.create("ci")
    assert store.authenticate(key) == record
    assert store.authenticate(key) == record  # its digest remembered
    store.revoke("ci")
    assert store.authenticate(key) is None


def test_a_refused_key_is_not_remembered_and_many_keys_stay_bounded() -> None:
    store = KeyStore()
    keys = [f"sk_test_{i:040d}" for i in range(600)]
    for key in keys:
        store.add(key)
    assert all(store.authenticate(key) is not None for key in keys)
    assert len(store._digests) <= 256
    assert store.authenticate("sk_test_" + "x" * 40) is None
    assert "sk_test_" + "x" * 40 not in store._digests
