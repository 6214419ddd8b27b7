"""Issue 13, item 5: --version, ALLOTMENT_<FLAG> configuration with flags winning (OPS-P6),
--print-config with secrets masked (OPS-P7), and a server configured by the environment
alone, whose readiness says why it is not ready (OPS-P9)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import httpx

from allotment import __version__
from tests.operations.cli import allotment, one_line
from tests.operations.served import Served
from tests.reliability.server import free_port

SECRET = "sk_test_" + "s3cret" * 6
STRIPE_SECRET = "sk_test_stripe_" + "x" * 20
WEBHOOK_SECRET = "whsec_" + "y" * 20


def test_version() -> None:
    result = allotment("--version")
    assert (result.returncode, result.stdout) == (0, f"allotment {__version__}\n")


def test_the_environment_configures_serve_and_flags_win(tmp_path: Path) -> None:
    env = {
        "ALLOTMENT_PORT": "9100",
        "ALLOTMENT_HOST": "0.0.0.0",
        "ALLOTMENT_DATA_DIR": str(tmp_path / "from-env"),
        "ALLOTMENT_CLOCK": "manual",
        "ALLOTMENT_KEEP_ALIVE": "false",
        "ALLOTMENT_IDEMPOTENCY_WINDOW_DAYS": "forever",
        "ALLOTMENT_API_KEY": f"{SECRET},sk_live_{'l' * 40}",
        "ALLOTMENT_STRIPE_SECRET_KEY": STRIPE_SECRET,
        "ALLOTMENT_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    result = allotment("serve", "--port", "9200", "--clock", "system", "--print-config", env=env)
    assert result.returncode == 0, result.stderr
    config = tomllib.loads(result.stdout)
    assert config["port"] == 9200  # the flag wins over ALLOTMENT_PORT
    assert config["clock"] == "system"
    assert config["host"] == "0.0.0.0"  # no flag: the environment
    assert config["data_dir"] == str(tmp_path / "from-env")
    assert config["keep_alive"] is False
    assert "idempotency_window_days" not in config  # forever: unset
    assert config["api_keys"] == ["sk_test_********", "sk_live_********"]
    assert config["stripe_secret_key"] == config["stripe_webhook_secret"] == "********"
    for secret in (SECRET, STRIPE_SECRET, WEBHOOK_SECRET, "s3cret", "l" * 40):
        assert secret not in result.stdout
    assert not (tmp_path / "from-env").exists()  # printing the configuration touches nothing


def test_a_repeated_flag_replaces_the_environment_list(tmp_path: Path) -> None:
    env = {"ALLOTMENT_API_KEY": f"sk_live_{'l' * 40}"}
    result = allotment("serve", "--api-key", SECRET, "--print-config", env=env)
    assert tomllib.loads(result.stdout)["api_keys"] == ["sk_test_********"]


def test_a_bad_environment_value_names_the_variable() -> None:
    result = allotment("serve", "--print-config", env={"ALLOTMENT_CONNECTIONS_MAX": "lots"})
    assert result.returncode == 2
    line = one_line(result)
    assert line == "allotment: ALLOTMENT_CONNECTIONS_MAX='lots' is invalid: expected a whole number"


def test_a_server_configured_by_the_environment_alone(tmp_path: Path) -> None:
    """No flags: the port, the data directory, the key and the disk threshold all come from
    the environment. A threshold above any disk makes /health/ready say so (503), while
    /health/live stays 200 and requests are served."""
    port = free_port()
    env = {
        "ALLOTMENT_PORT": str(port),
        "ALLOTMENT_DATA_DIR": str(tmp_path / "data"),
        "ALLOTMENT_API_KEY": SECRET,
        "ALLOTMENT_DISK_FREE_MIN_MB": str(1 << 40),  # an exabyte: more than any disk
    }
    server = Served(tmp_path / "server.log", env=env)
    try:
        assert server.url == f"http://127.0.0.1:{port}"
        assert "sandbox key" not in server.output()  # a key was given: none minted
        live = httpx.get(f"{server.url}/health/live", timeout=30)
        assert live.status_code == 200
        assert live.json() == {"status": "alive", "reason": "the server process answers requests"}
        ready = httpx.get(f"{server.url}/health/ready", timeout=30)
        assert ready.status_code == 503
        assert set(ready.json()) == {"status", "reason"}  # public: status and reason only
        assert ready.json()["status"] == "not ready"
        assert ready.json()["reason"].startswith("disk space low: ")
        assert f"below the minimum {1 << 40} MB" in ready.json()["reason"]
        plans = httpx.get(
            f"{server.url}/api/v1/client/plans",
            headers={"Authorization": f"Bearer {SECRET}"}, timeout=30,
        )  # fmt: skip
        assert plans.status_code == 200
        assert (tmp_path / "data" / "allotment.lock").exists()  # ALLOTMENT_DATA_DIR served
    finally:
        assert server.stop() == 0
