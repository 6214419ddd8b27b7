"""The encoded answers of repeated checks (http/check_answers.py, ENT-26): reused only for the
very decision they were made for."""

from __future__ import annotations

from allotment.domain.decisions import Decision
from allotment.http import check_answers
from allotment.http.check_answers import CheckAnswers


def test_an_answer_is_reused_only_for_its_own_decision_object() -> None:
    answers = CheckAnswers()
    decision = Decision(allowed=True)
    answers.put("acme", "api_calls", decision, b"first")
    assert answers.get("acme", "api_calls", decision) == b"first"
    assert answers.get("acme", "api_calls", Decision(allowed=True)) is None  # equal, not it
    assert answers.get("acme", "ai_chat", decision) is None
    assert answers.get("other", "api_calls", decision) is None
    replaced = Decision(allowed=False)
    answers.put("acme", "api_calls", replaced, b"second")
    assert answers.get("acme", "api_calls", decision) is None
    assert answers.get("acme", "api_calls", replaced) == b"second"


def test_the_answers_kept_are_bounded() -> None:
    answers = CheckAnswers()
    decision = Decision(allowed=True)
    bound = check_answers._ANSWERS_MAX
    for i in range(bound + 10):
        answers.put(f"c{i}", "api_calls", decision, b"x")
        assert len(answers) <= bound
    assert answers.get(f"c{bound + 9}", "api_calls", decision) == b"x"
