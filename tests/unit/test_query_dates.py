"""Whatever a question says about dates, reading it never fails retrieval."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vicw.retrieval.query import analyse

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("query", [
    "What happened on 2023-02-30?", "and on 2023-13-01?", "what about 9999-12-31", "99999999 days ago",
    "999999999999 weeks ago", "what did I say on 0001-01-01",
])
def test_impossible_dates_are_words_not_failures(query):
    intent = analyse(query, NOW)
    assert intent.tokens  # still searched for
    if intent.time_range is not None:
        start, end = intent.time_range
        assert start.tzinfo is not None and end.tzinfo is not None and start < end
        start.timestamp(), end.timestamp()  # what the temporal step computes


date_words = st.sampled_from(["on", "in", "last", "this", "ago", "days", "weeks", "months", "year", "week", "month",
                              "yesterday", "today", "may", "February", "29th", "31", "of", "1900", "2999", "-"])
numbers = st.integers(min_value=0, max_value=10**15).map(str)
isoish = st.tuples(st.integers(0, 9999), st.integers(0, 99), st.integers(0, 99)).map(lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}")


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.one_of(date_words, numbers, isoish, st.text(max_size=8)), max_size=10),
       year=st.integers(1900, 2999), month=st.integers(1, 12), day=st.integers(1, 28))
def test_reading_a_question_never_raises(words, year, month, day):
    now = datetime(year, month, day, tzinfo=UTC)
    intent = analyse(" ".join(words), now)
    if intent.time_range is not None:
        start, end = intent.time_range
        assert start.tzinfo is not None and end.tzinfo is not None
        start.timestamp(), end.timestamp()
