"""OpenMeter's API on allotment (issue 16, docs/openmeter.md): CloudEvents, meters, features
and customers, under `/api/v1`, answering errors as `application/problem+json`
(`problems.py`) while the Tanso paths keep their envelope."""
