"""Redraw docs/invoice-sample.png and docs/credit-note-sample.png: the sample documents of
tests/documents/samples.py, rendered to PDF and rasterised by poppler's pdftoppm.

    apt-get install poppler-utils      # once: pdftoppm
    PYTHONPATH=src python -m bench.document_samples

CI does not run this: the PNGs are for people to look at the layout (issue 18, item 6).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.documents.samples import credit_note, invoice

from allotment.documents import render_credit_note, render_invoice

DOCS = Path(__file__).resolve().parent.parent / "docs"
DPI = 100  # A4 at 100 dpi is 827 x 1169 pixels: readable, and about 100 KB a page


def _png(pdf: bytes, target: Path) -> None:
    """The first page of `pdf` as `target`."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        raise SystemExit("pdftoppm not found: apt-get install poppler-utils")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "document.pdf"
        source.write_bytes(pdf)
        stem = Path(folder) / "page"
        subprocess.run(
            [tool, "-png", "-r", str(DPI), "-f", "1", "-l", "1", "-singlefile", source, stem],
            check=True,
        )
        shutil.copyfile(stem.with_suffix(".png"), target)
    print(f"wrote {target}")


def main() -> None:
    _png(render_invoice(invoice()), DOCS / "invoice-sample.png")
    _png(render_credit_note(credit_note()), DOCS / "credit-note-sample.png")


if __name__ == "__main__":
    main()
