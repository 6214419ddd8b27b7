"""Issue 13, item 2: each start-up error is one clear line and a non-zero exit (OPS-P3).

Run through the real command. The data directory lock and the port are held by this test
process, which is exactly what another server would do (a lock on the directory, a listening
socket), without the cost of starting one; tests/reliability/test_one_server.py does the same
with a real second server.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from allotment.persistence import datadir_lock
from tests.operations.cli import allotment, one_line
from tests.reliability.server import free_port


def test_an_unknown_flag_is_one_line(tmp_path: Path) -> None:
    result = allotment("serve", "--data-dir", str(tmp_path), "--prot", "8080")
    assert result.returncode == 2
    assert (
        one_line(result) == "allotment: unrecognized arguments: --prot 8080 (see allotment --help)"
    )


def test_a_malformed_catalog_names_file_line_and_column(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[features.api_calls]\nname = "API calls"\nunit = = "call"\n')
    result = allotment("serve", "--data-dir", str(tmp_path / "d"), "--catalog", str(catalog))
    assert result.returncode == 2
    assert one_line(result) == (
        f"allotment: catalog {catalog}, line 3, column 8 is not valid TOML: Invalid value"
    )
    assert not (tmp_path / "d" / "api_keys.json").exists()  # a refused start mints no key


def test_an_unreadable_catalog_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = allotment("serve", "--data-dir", str(tmp_path), "--catalog", str(missing))
    assert result.returncode == 2
    assert (
        one_line(result) == f"allotment: cannot read catalog {missing}: No such file or directory"
    )


def test_a_catalog_with_the_wrong_shape_names_the_field(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text("features = 3\n")
    line = one_line(allotment("serve", "--data-dir", str(tmp_path), "--catalog", str(catalog)))
    assert line == (
        f"allotment: catalog {catalog} is invalid: "
        "Expected `array | null`, got `int` - at `$.features`"
    )


def test_a_malformed_price_table_is_one_line(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('asOf = "2026-01-01"\n[models."m"]\nprovider = 1\n')
    result = allotment("serve", "--data-dir", str(tmp_path), "--model-prices", str(prices))
    assert result.returncode == 2
    assert one_line(result) == (
        f"allotment: model price table {prices} is invalid: "
        "Expected `str`, got `int` - at `$.models[...].provider`"
    )


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_unwritable_data_directory_is_one_line(tmp_path: Path, where: str) -> None:
    """Tests run as root in CI, where no permission bit stops a write; a file where the
    directory should be stops root too, on the same probe a read-only disk fails."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    data_dir = blocker if where == "a file" else blocker / "data"
    line = one_line(allotment("serve", "--data-dir", str(data_dir)))
    reason = "is not a directory" if where == "a file" else "is not writable: Not a directory"
    assert line == f"allotment: data directory {data_dir} {reason}"


def test_a_data_directory_locked_by_another_server_is_one_line(tmp_path: Path) -> None:
    lock = datadir_lock.hold(tmp_path)
    try:
        result = allotment("serve", "--data-dir", str(tmp_path), "--port", str(free_port()))
    finally:
        lock.release()
    assert one_line(result) == f"allotment: data directory {tmp_path} in use by PID {os.getpid()}"


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = allotment("serve", "--data-dir", str(tmp_path), "--port", str(port))
    assert one_line(result) == f"allotment: port {port} on 127.0.0.1 is in use"
    assert not (tmp_path / "api_keys.json").exists()
