"""The page machinery under a document: the embedded font, fixed metadata and "Page n of m".

reportlab registers fonts process-wide, so the font is registered once, on first use. The
canvas holds every page back until the last one is laid out, so each footer can say how many
pages there are (the flow does not know before it ends).
"""

from __future__ import annotations

import functools
from datetime import date
from importlib import resources
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

__all__ = ("BOLD", "MARGIN", "PAGE", "REGULAR", "canvas_maker", "ensure_fonts")

REGULAR = "AllotmentSans"
BOLD = "AllotmentSans-Bold"
PAGE = A4
MARGIN = 18 * mm
_FONT_FILES = {REGULAR: "DejaVuSans.ttf", BOLD: "DejaVuSans-Bold.ttf"}
FOOTER_SIZE = 8


@functools.cache
def ensure_fonts() -> None:
    """Register the package's own DejaVu Sans (CN-D4): it covers Latin, Greek, Cyrillic,
    Hebrew, Arabic and more, and does not depend on which fonts the host has installed."""
    folder = resources.files("allotment.documents") / "fonts"
    for name, file in _FONT_FILES.items():
        with resources.as_file(folder / file) as path:
            pdfmetrics.registerFont(TTFont(name, str(path)))
    pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD)


class _NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab ships no types
    """Keeps each finished page's drawing state and writes them all at save time, when the
    page count is known; stamps the document's own date as its creation date (CN-D3)."""

    def __init__(self, *args: Any, footer: str, issued: date, **kwargs: Any) -> None:
        kwargs["invariant"] = True  # no clock reading, fixed file id: same input, same bytes
        super().__init__(*args, **kwargs)
        stamp = f"D:{issued:%Y%m%d}000000+00'00'"
        self.setDateFormatter(lambda *_: stamp)
        self._footer = footer
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, page in enumerate(self._pages, start=1):
            self.__dict__.update(page)
            self._draw_footer(number, total)
            super().showPage()
        super().save()

    def _draw_footer(self, number: int, total: int) -> None:
        self.setFont(REGULAR, FOOTER_SIZE)
        self.setFillGray(0.4)
        self.drawString(MARGIN, MARGIN / 2, self._footer)
        self.drawRightString(PAGE[0] - MARGIN, MARGIN / 2, f"Page {number} of {total}")


def canvas_maker(footer: str, issued: date) -> Any:
    """The canvas class reportlab's doc template instantiates, bound to this document."""
    return functools.partial(_NumberedCanvas, footer=footer, issued=issued)
