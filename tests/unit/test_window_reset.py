"""The pure parts of reset / restore: the seq counter never goes back."""

from __future__ import annotations

from datetime import UTC, datetime

from vicw.models import Turn, WindowState
from vicw.window import advance_seq, clear_window

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def window() -> WindowState:
    turns = [Turn(seq=0, role="system", content="be brief", timestamp=NOW, tokens=3, pinned=True)]
    turns += [Turn(seq=i, role="user", content=f"m{i}", timestamp=NOW, tokens=2) for i in range(5, 9)]
    return WindowState(tenant="t", session_id="s", turns=turns, next_seq=9, offloaded_turns=4, offloaded_jobs=1, total_turns=9,
                       history_count=8, history_digests=["x"])


def test_clear_keeps_the_counter_and_offloads_the_cleared_turns():
    fresh, job = clear_window(window(), NOW)
    assert fresh.turns == [] and fresh.next_seq == 9
    assert fresh.history_count == 0 and fresh.history_digests == []
    assert job is not None and [t.seq for t in job.turns] == [5, 6, 7, 8]  # not the pinned system prompt
    assert fresh.offloaded_turns == 8 and fresh.offloaded_jobs == 2


def test_clear_of_an_empty_window_sheds_nothing():
    fresh, job = clear_window(WindowState(tenant="t", session_id="s", next_seq=3), NOW)
    assert job is None and fresh.next_seq == 3


def test_advance_only_moves_forward():
    assert advance_seq(window(), "t", "s", 4).next_seq == 9
    assert advance_seq(window(), "t", "s", 20).next_seq == 20
    assert advance_seq(None, "t", "s", 7).next_seq == 7
