"""`allotment serve --shards N [--workers M] [--ray-address auto|ADDRESS]`: the shards as Ray
actors, HTTP from M granian workers each holding handles to every shard (SCL-39).

Two processes besides the workers, because Ray is not fork-safe and granian forks its
workers: the `serve` process never joins Ray; it starts the keeper (`python -m
allotment.scale_out`), which joins or starts the cluster, creates or re-attaches the N shard
actors, waits until each has recovered, prints the cluster's address and then waits for its
standard input to close. Each granian worker joins that address after the fork. A local
cluster the keeper started ends with it, so with the server; actors on a cluster that was
joined stay, and the next server re-attaches to them by name (SCL-32).

Importing this module does not import `ray`: only `runtime.ray_shard` does, when called.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from functools import partial

from allotment.asgi import SETTINGS_ENV, decode_settings, encode_settings, served_app
from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.body_deadline import BodyDeadline
from allotment.http.fast_path import FastPath
from allotment.loading import load_catalog, load_price_table
from allotment.persistence.shard_layout import record_shards
from allotment.runtime.system import ActorSystem
from allotment.webhooks.remote import RemoteWebhooks
from allotment.wiring import checkout_service, key_store, server_clock, shard_host_system

__all__ = ("FACTORY", "Keeper", "KeeperFailed", "app_from_environment", "ray_app", "start_keeper")

_READY = "ready "
AUTH_MODE_ENV = "RAY_AUTH_MODE"
FACTORY = "allotment.scale_out:app_from_environment"  # what the workers serve


class KeeperFailed(RuntimeError):
    """The shards could not be started or re-attached; the message is the keeper's last line."""


class Keeper:
    """The running keeper process: `address` is the Ray cluster's, `stop()` ends it (and a
    local cluster it started)."""

    def __init__(self, process: subprocess.Popen[str], address: str, auth_mode: str) -> None:
        self._process = process
        self.address = address
        self.auth_mode = auth_mode  # Ray's RAY_AUTH_MODE, for the workers that join (SCL-39)

    def stop(self, timeout_s: float = 60.0) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()  # our own child, by its handle
            self._process.wait()


def start_keeper(settings: Settings) -> Keeper:
    """Start the keeper for `settings` and wait until every shard actor serves.

    Raises:
        KeeperFailed: it ended before that (its last line says why).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "allotment.scale_out"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, SETTINGS_ENV: encode_settings(settings)},
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        if line.startswith(_READY):
            address, _, auth_mode = line[len(_READY) :].strip().partition(" ")
            return Keeper(process, address, auth_mode)
        lines.append(line.strip())
    process.wait()
    raise KeeperFailed(lines[-1] if lines else f"the Ray keeper ended ({process.returncode})")


def _keep(settings: Settings) -> int:
    """The keeper's life (see the module's doc)."""
    from allotment.runtime import ray_shard  # noqa: PLC0415  only the keeper joins Ray here

    try:
        record_shards(settings.data_dir, settings.shards)  # SCL-20: N is the directory's
        address = ray_shard.connect(settings.ray_address, settings.ray_namespace)
        handles = ray_shard.host_actors(settings.shards, partial(_host_build, settings))
        ray_shard.wait_ready(handles)
    except Exception as error:  # whatever failed (a count mismatch, Ray): `serve` prints it
        print(f"allotment: {error}", flush=True)
        return 1
    # A cluster Ray starts requires a token (~/.ray/auth_token) unless told otherwise; the
    # workers must join in the mode the cluster runs in, which Ray keeps in this variable.
    print(f"{_READY}{address} {os.environ.get(AUTH_MODE_ENV, 'disabled')}", flush=True)
    sys.stdin.read()  # until `serve` closes it, or dies
    return 0


def _host_build(settings: Settings, index: int) -> Callable[[], ActorSystem]:
    return partial(shard_host_system, settings, index)


def ray_app(settings: Settings, on_started: Callable[[], None] | None = None) -> FastPath:
    """A front door worker's app: joins `settings.ray_address` and routes to the shard actors
    the keeper started; its webhook admin is the hosts' (each delivers its own shard's
    notifications), and its analytics database merges the shards' (docs/scale-out.md)."""
    from allotment.persistence.analytics_merged import MergedAnalytics  # noqa: PLC0415  (duckdb)
    from allotment.persistence.console_reads import SnapshotReads  # noqa: PLC0415  (duckdb)
    from allotment.runtime import ray_shard  # noqa: PLC0415  after granian's fork, never before

    assert settings.ray_address is not None, "the keeper gives the workers its address"
    ray_shard.connect(settings.ray_address, settings.ray_namespace)
    clock, clock_store = server_clock(settings, persistent=True)
    # SCL-76: the merged analytics need every shard's directory visible from this worker
    merged = MergedAnalytics(settings.data_dir, settings.shards, settings.analytics_every_s)
    system = ray_shard.RaySystem(
        ray_shard.attach_hosts(settings.shards), load_catalog(settings.catalog_path, clock.now()),
        load_price_table(settings.model_prices_path), settings, clock, clock_store,
        merged_analytics=merged,
    )  # fmt: skip
    system.analytics_reads = SnapshotReads(settings.data_dir)  # the merged one (SCL-102)
    webhooks = RemoteWebhooks([channel.webhooks for channel in system.channels])  # SCL-67
    return create_app(
        settings, system, key_store(settings), checkout_service(settings, clock),
        on_started=on_started, webhooks=webhooks,
    )  # fmt: skip


def app_from_environment() -> BodyDeadline:
    """The granian factory of a Ray front door's workers."""
    return served_app(ray_app)


if __name__ == "__main__":
    raise SystemExit(_keep(decode_settings(os.environ[SETTINGS_ENV])))
