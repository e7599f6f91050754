"""Rule-based extraction on real sentences, stable item keys, status changes, LLM output validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from vicw.extraction import (
    Extraction,
    ExtractionOutputError,
    LLMExtractor,
    StateItem,
    StatusUpdate,
    entity_key,
    extract,
    item_key,
    load_rules,
    match_update,
    parse_llm_extraction,
    terms,
)
from vicw.llm.base import Completion, LLMTimeout
from vicw.models import OffloadJob, Turn

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def make_job(*messages, first_seq: int = 0, session_id: str | None = "s1") -> OffloadJob:
    """messages: (role, content) or (role, name, content)."""
    turns = []
    for i, msg in enumerate(messages):
        role, name, content = msg if len(msg) == 3 else (msg[0], None, msg[1])
        seq = first_seq + i
        turns.append(Turn(seq=seq, role=role, name=name, content=content, timestamp=T0 + timedelta(minutes=seq), tokens=8))
    return OffloadJob(job_id=f"job-{first_seq}", tenant="t1", session_id=session_id, turns=turns, token_count=8 * len(turns))


def one(sentence: str) -> Extraction:
    return extract(make_job(("user", sentence)))


# (sentence, expected items as (kind, key), expected entities as (name, type))
SENTENCES = [
    ("I need to submit the quarterly report to Dr. Patel by Friday.",
     [("task", "task:submit quarterly report dr patel")], [("Patel", "person")]),
    ("My goal is to run the Lisbon Marathon next year.",
     [("goal", "goal:run lisbon marathon")], [("Lisbon Marathon", "thing")]),
    ("I'm trying to learn Portuguese before we move to Porto.",
     [("goal", "goal:learn portuguese before move porto")], [("Portuguese", "thing"), ("Porto", "place")]),
    ("Remind me to call my sister Maria tomorrow at 6pm.",
     [("task", "task:call sister maria")], [("Maria", "person")]),
    ("We decided to use Postgres instead of MongoDB for the billing service.",
     [("decision", "decision:use postgre instead mongodb bill service")], [("Postgres", "thing"), ("MongoDB", "thing")]),
    ("Let's go with FastAPI for the backend.", [("decision", "decision:fastapi backend")], [("FastAPI", "thing")]),
    ("I live in Berlin, and I work at Acme Corp.",
     [("fact", "fact:user:residence"), ("fact", "fact:user:employer")], [("Berlin", "place"), ("Acme Corp", "organisation")]),
    ("My favourite colour is green.", [("fact", "fact:user:favourite colour")], []),
    ("Todo: renew the passport and book flights to Tokyo.",
     [("task", "task:renew passport book flight tokyo")], [("Tokyo", "place")]),
    ("I'm reading \"The Name of the Wind\" by Patrick Rothfuss.",
     [], [("The Name of the Wind", "work"), ("Patrick Rothfuss", "person")]),
    ("Yesterday Bob and I met with the team from Globex Inc in San Francisco.",
     [], [("Bob", "thing"), ("Globex Inc", "organisation"), ("San Francisco", "place")]),
    ("My budget is $1,500 for the trip.", [("fact", "fact:user:budget")], []),
    ("I'm allergic to peanuts.", [("fact", "fact:user:allergy")], []),
    ("I'm a software engineer at Initech.", [("fact", "fact:user:job")], [("Initech", "organisation")]),
    ("I want to visit Kyoto in April, but I need to save money first.",
     [("goal", "goal:visit kyoto"), ("task", "task:save money first")], [("Kyoto", "place")]),
    ("I need to cancel my gym membership.", [("task", "task:cancel gym membership")], []),
    ("I'd like to write a novel someday.", [("goal", "goal:write novel someday")], []),
    ("We've chosen Stripe for payments.", [("decision", "decision:stripe payment")], [("Stripe", "thing")]),
    ("I've moved to Amsterdam.", [("fact", "fact:user:residence")], [("Amsterdam", "place")]),
    ("My name is Priya Sharma.", [("fact", "fact:user:name")], [("Priya Sharma", "person")]),
    ("Don't let me forget to water the plants.", [("task", "task:water plant")], []),
    ("I have to pick up the kids from school at 3pm.", [("task", "task:pick kid school")], []),
    ("Do I need to bring a passport to Canada?", [], [("Canada", "place")]),
    ("Noted. Thanks for the help!", [], []),
]


@pytest.mark.parametrize(("sentence", "items", "entities"), SENTENCES, ids=[s[0][:40] for s in SENTENCES])
def test_real_sentences(sentence, items, entities):
    out = one(sentence)
    assert [(i.kind, i.key) for i in out.items] == items
    assert sorted((e.name, e.type) for e in out.entities) == sorted(entities)
    assert all(i.status == "active" and i.turn_seqs == [0] for i in out.items)


def test_item_text_dates_and_amounts_come_from_the_sentence():
    task = one("I need to submit the quarterly report to Dr. Patel by Friday.").items[0]
    assert task.text == "I need to submit the quarterly report to Dr. Patel by Friday"
    assert task.dates == ["by Friday"]
    assert task.entity_keys == ["patel"]
    fact = one("My budget is $1,500 for the trip.").items[0]
    assert fact.amounts == ["$1,500"] and fact.text == "My budget is $1,500 for the trip"


def test_keys_ignore_deadlines_and_phrasing_noise():
    a = one("I need to submit the report by Friday.").items[0].key
    b = one("I really need to submit my report.").items[0].key
    assert a == b == "task:submit report"
    assert item_key("task", "Booking the flights") == item_key("task", "book flight")


def test_completion_in_a_later_turn_updates_the_item_instead_of_adding_one():
    out = extract(make_job(
        ("user", "Alice", "I need to submit the quarterly report to Dr. Patel by Friday."),
        ("assistant", "Noted. Anything else?"),
        ("user", "Alice", "I finished the quarterly report!"),
    ))
    [task] = out.items
    assert (task.status, task.status_seq, task.turn_seqs) == ("completed", 2, [0, 2])
    assert out.updates == []


def test_cancellation_and_restatement():
    out = extract(make_job(
        ("user", "I want to learn Portuguese."),
        ("user", "Never mind the Portuguese."),
        ("user", "I need to fix the bike. Scratch that."),
    ))
    by_key = {i.key: i for i in out.items}
    assert by_key["goal:learn portuguese"].status == "invalid"
    # "scratch that" has no content words: it cancels the most recent item before it
    assert by_key["task:fix bike"].status == "invalid"


def test_restated_fact_keeps_one_item_with_the_latest_value():
    out = extract(make_job(
        ("user", "Alice", "My favourite colour is blue."),
        ("user", "Bob", "My favourite colour is red."),
        ("user", "Alice", "Actually my favourite colour is green now."),
    ))
    facts = {i.key: i for i in out.items}
    assert set(facts) == {"fact:alice:favourite colour", "fact:bob:favourite colour"}
    alice = facts["fact:alice:favourite colour"]
    assert alice.text == "my favourite colour is green now" and alice.turn_seqs == [0, 2]
    assert alice.subject == "Alice" and "alice" in alice.entity_keys


def test_unmatched_completion_becomes_an_update_for_the_store():
    out = one("I finished the bathroom renovation.")
    assert out.items == []
    [upd] = out.updates
    assert (upd.status, upd.terms, upd.seq) == ("completed", ["bathroom", "renovation"], 0)


def test_negated_task_is_an_invalidation_not_a_task():
    out = one("I no longer need to renew the passport.")
    assert out.items == [] and out.updates[0].status == "invalid"


def test_questions_and_assistant_turns_create_no_state():
    out = extract(make_job(("user", "Should I move to Lisbon?"), ("assistant", "I need to check the visa rules first.")))
    assert out.items == []
    assert {e.key for e in out.entities} == {"lisbon"}


def test_speakers_are_people_and_mentions_accumulate():
    out = extract(make_job(("user", "Alice", "Hi."), ("user", "Bob", "Alice is late."), ("user", "Alice", "Sorry!")))
    alice = next(e for e in out.entities if e.key == "alice")
    assert alice.type == "person" and alice.turn_seqs == [0, 1, 2]


def test_sentence_initial_word_is_a_name_only_if_seen_as_one_elsewhere():
    assert one("Lisbon is lovely.").entities == []
    out = extract(make_job(("user", "Lisbon is lovely."), ("user", "I live in Lisbon.")))
    assert [e.turn_seqs for e in out.entities] == [[0, 1]]


def test_match_update_prefers_overlap_and_respects_order():
    report = StateItem(key="task:submit quarterly report", kind="task", text="submit the quarterly report", turn_seqs=[3])
    flights = StateItem(key="task:book flight", kind="task", text="book flights", turn_seqs=[5])
    later = StateItem(key="task:call bob", kind="task", text="call Bob", turn_seqs=[20])

    def upd(words, seq=10):
        return StatusUpdate(status="completed", target=" ".join(words), terms=words, seq=seq, updated_at=0)

    assert match_update(upd(["quarterly", "report"]), [report, flights, later]) is report
    assert match_update(upd(["flight"]), [report, flights]) is flights
    assert match_update(upd(["call", "bob"]), [later]) is None  # stated after the update
    assert match_update(upd(["garden"]), [report, flights]) is None
    assert match_update(upd([]), [report, flights, later]) is flights  # most recent before seq 10
    # replaying the update after it was applied (its seq now in turn_seqs) picks the same item
    flights.turn_seqs.append(10)
    assert match_update(upd([]), [report, flights, later]) is flights


def test_entity_key_and_terms_normalise():
    assert entity_key("  Acme   Corp's ") == "acme corp"
    assert entity_key("O\u2019Brien") == "o'brien"
    assert terms("Finishing the reports by Friday") == ["finish", "report"]


def test_rules_are_data(tmp_path):
    data = json.loads(load_rules().model_dump_json())
    data["state_patterns"].insert(0, {"kind": "goal", "pattern": r"\bi dream of (?P<obj>{PHRASE})"})
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(data))
    job = make_job(("user", "I dream of sailing around Iceland."))
    assert extract(job).items == []
    [item] = extract(job, load_rules(path)).items
    assert item.key == "goal:sail around iceland"


# --- LLM output -----------------------------------------------------------------------------------
VALID = {
    "entities": [{"name": "Lisbon", "type": "place"}, {"name": "Alice", "type": "person"}],
    "items": [
        {"kind": "fact", "status": "active", "text": "Alice lives in Lisbon", "topic": "residence", "turn_seq": 4,
         "entities": ["Lisbon", "Alice"]},
        {"kind": "task", "status": "completed", "text": "book flights", "turn_seq": 5, "entities": []},
    ],
}


def llm_job() -> OffloadJob:
    return make_job(("user", "Alice", "I live in Lisbon."), ("user", "Alice", "I finished booking the flights."), first_seq=4)


def test_valid_llm_output_becomes_an_extraction():
    out = parse_llm_extraction("```json\n" + json.dumps(VALID) + "\n```", llm_job())
    assert {(e.key, e.type) for e in out.entities} == {("lisbon", "place"), ("alice", "person")}
    fact, task = out.items
    assert fact.key == "fact:alice:residence" and fact.entity_keys == ["lisbon", "alice"]
    assert (task.key, task.status, task.turn_seqs) == ("task:book flight", "completed", [5])


@pytest.mark.parametrize("junk", [
    "",
    "Sure! Here are the entities: Lisbon, Alice.",
    "{not json",
    "[]",
    '{"entities": "Lisbon"}',
    '{"items": [{"kind": "wish", "text": "x", "turn_seq": 4}]}',
    '{"items": [{"kind": "task", "text": "x", "turn_seq": 99}]}',
    '{"entities": [], "items": [], "extra": 1}',
    json.dumps({"items": [{"kind": "task", "text": "", "turn_seq": 4}]}),
])
def test_invalid_llm_output_is_rejected(junk):
    with pytest.raises(ExtractionOutputError):
        parse_llm_extraction(junk, llm_job())


class ScriptedProvider:
    """Provider-shaped object returning fixed text: exercises only the output parsing path."""

    name = "scripted"
    model = "scripted"

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.requests = []

    def complete(self, request):
        self.requests.append(request)
        if isinstance(self.reply, Exception):
            raise self.reply
        return Completion(text=self.reply, model=self.model)


@pytest.mark.parametrize("reply", ["I cannot do that.", '{"entities": 3}', LLMTimeout("slow")])
def test_llm_extractor_falls_back_to_rules(reply):
    job = llm_job()
    provider = ScriptedProvider(reply)
    assert LLMExtractor(provider)(job) == extract(job)
    request = provider.requests[0]
    assert request.temperature == 0.0 and "[4] user Alice: I live in Lisbon." in request.messages[1]["content"]


def test_llm_extractor_uses_valid_output():
    out = LLMExtractor(ScriptedProvider(json.dumps(VALID)))(llm_job())
    assert [i.key for i in out.items] == ["fact:alice:residence", "task:book flight"]
