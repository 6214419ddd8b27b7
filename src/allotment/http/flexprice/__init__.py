"""Flexprice's credit-note and invoice operations under `/v1` (issue 18, docs/credit-notes.md)."""
