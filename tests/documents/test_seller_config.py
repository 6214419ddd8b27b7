"""The seller on the PDFs is configured like every serve flag (CN-D1, OPS-P6, OPS-P7)."""

from __future__ import annotations

import argparse
import tomllib

from allotment.config import Settings
from allotment.documents import Party
from allotment.serve_options import apply_environment, render_config, serve_options, settings_from


def _settings(argv: list[str], environ: dict[str, str]) -> Settings:
    parser = argparse.ArgumentParser()
    serve_options(parser)
    apply_environment(parser, environ)
    return settings_from(parser.parse_args(argv), environ)


def test_the_seller_defaults_to_allotment_without_an_address() -> None:
    settings = _settings([], {})
    assert Party.seller(settings.seller_name, settings.seller_address) == Party(name="allotment")


def test_the_environment_sets_the_seller_and_a_flag_wins() -> None:
    environ = {
        "ALLOTMENT_SELLER_NAME": "Env GmbH",
        "ALLOTMENT_SELLER_ADDRESS": "Hauptstraße 5\n10115 Berlin",
    }
    settings = _settings(["--seller-name", "Flag AB"], environ)
    seller = Party.seller(settings.seller_name, settings.seller_address)
    assert seller == Party(name="Flag AB", address=("Hauptstraße 5", "10115 Berlin"))
    # --print-config stays valid TOML with the address's newline in it
    config = tomllib.loads(render_config(settings))
    assert (config["seller_name"], config["seller_address"]) == (
        "Flag AB",
        "Hauptstraße 5\n10115 Berlin",
    )
