"""Plans (CON-50..CON-55): the catalog read-only, each plan with its features, prices, tiers
and credit allocations, and an editor for the catalog document that saves through the admin
API's own path (`catalog_editor.py`). The catalog is the shard's, in memory: a page reads it
without a customer turn, and its cost grows with the catalog, not the customers."""

from __future__ import annotations

from litestar import get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from allotment.console.catalog_editor import EditorOutcome, catalog_text, submit_catalog
from allotment.console.context import Console, ConsoleArg

__all__ = ("PAGES", "plans", "save_catalog_form")

FIELD = "catalog"  # the editor's textarea


def _page(console: Console, editor: EditorOutcome, saved: bool, status: int = 200) -> Template:
    catalog = console.shard.catalog
    lines = editor.text.count("\n") + 1
    return console.render(
        "plans.html",
        status_code=status,
        title="Plans",
        plans=sorted(catalog.plans.values(), key=lambda p: (p.price_amount, p.key)),
        credit_models=catalog.credit_models,
        features=catalog.features,
        editor=editor,
        rows=min(max(lines, 12), 40),
        saved=saved,
    )


@get("/plans", name="console.plans")
async def plans(console: ConsoleArg, saved: FromQuery[bool] = False) -> Template:
    """The catalog, and the editor holding its document."""
    return _page(console, EditorOutcome(text=catalog_text(console.shard.catalog)), saved)


@post("/plans/catalog", name="console.catalog_save", status_code=303)
async def save_catalog_form(console: ConsoleArg) -> Redirect | Template:
    """Save the edited document (CON-52), or show it again with each error by its line
    (CON-53); nothing changed then."""
    text = (await console.form()).get(FIELD, "").replace("\r\n", "\n")
    outcome = await submit_catalog(console.shard, text, console.system.clock.now())
    if outcome.catalog is None:
        return _page(console, outcome, saved=False, status=400)
    return Redirect("/console/plans?saved=true", status_code=HTTP_303_SEE_OTHER)


PAGES = [plans, save_catalog_form]
