"""Deterministic long multi-session conversations with planted facts and questions (no downloads).

A conversation is a group chat between a few friends, split into dated sessions. Most turns are
filler built from many templates (plans, work, food, weather, sport, films...). Some turns plant a
fact; each fact has distractor turns that share its words in another context. Questions come in
four types, each with the ids (positions) of the turns that hold the evidence:

* single-hop: one fact ("What is the name of Maya's cat?");
* multi-hop: two facts that must be combined ("Which restaurant did Maya's colleague from Ghent recommend?");
* temporal: "When did ..." - answered by the date of the turn that says it;
* long-range: a single fact said in the first tenth of the conversation (hundreds of turns before the end).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

PEOPLE = ["Maya", "Jonas", "Priya", "Tomas", "Lena", "Omar", "Sofia", "Kenji"]
RELATIVES = ["Clara", "Mateo", "Ingrid", "Ravi", "Noor", "Felix", "Hana", "Bruno", "Elif", "Dario", "Yuki", "Aiko", "Lars", "Mira"]
CITIES = ["Ghent", "Porto", "Tallinn", "Bologna", "Krakow", "Valencia", "Lyon", "Utrecht", "Graz", "Aarhus", "Bilbao", "Brno",
          "Turku", "Cork", "Malmo", "Leipzig"]
ANIMALS = ["cat", "dog", "parrot", "rabbit", "tortoise", "hamster"]
PET_NAMES = ["Pixel", "Biscuit", "Nimbus", "Pepper", "Mochi", "Rocket", "Juniper", "Waffles", "Ziggy", "Olive", "Basil", "Comet"]
COMPANIES = ["Northwind Logistics", "Bluefin Analytics", "Harbor Robotics", "Quillpoint Media", "Greenleaf Energy",
             "Atlas Biotech", "Copperline Games", "Meridian Health"]
JOBS = ["data engineer", "nurse", "architect", "sound technician", "pastry chef", "translator", "lab analyst", "pilot"]
RESTAURANTS = ["Casa Lupo", "The Salted Fig", "Kombu Bar", "Olive and Ash", "Maison Verte", "Little Saigon Kitchen",
               "The Copper Pot", "Trattoria Sole", "Noodle Theory", "El Faro"]
PLACES = ["Iceland", "the Dolomites", "Lisbon", "Crete", "Morocco", "the Scottish Highlands", "Japan", "Sicily", "Norway",
          "Vietnam", "Patagonia", "Slovenia"]
CARS = ["Skoda Octavia", "Toyota Yaris", "Volvo V60", "Renault Zoe", "Mazda 3", "Kia Niro", "Fiat Panda", "Honda Jazz"]
COLOURS = ["red", "blue", "grey", "green", "white", "black"]
INSTRUMENTS = ["cello", "saxophone", "ukulele", "piano", "drums", "violin"]
BOOKS = ["The Overstory", "Piranesi", "Stoner", "Middlemarch", "The Remains of the Day", "Klara and the Sun", "Dune", "Circe"]

FILLER_TOPICS = {
    "weather": ["It has been raining non-stop here since {day}.", "Finally some sun today, I had lunch outside.",
                "The forecast says snow on {day}, can you believe it?", "So windy this morning that my umbrella broke.",
                "Is it just me or has this {month} been unusually warm?"],
    "work": ["The quarterly review got moved to {day} again.", "I spent the whole afternoon fixing a spreadsheet somebody broke.",
             "My manager wants the report by {day}, no pressure.", "We had a fire drill in the middle of my presentation.",
             "Our team is hiring two more people, the interviews start {day}.", "The coffee machine at the office died, chaos.",
             "I have back-to-back meetings until {time} today."],
    "food": ["I tried a new recipe for {dish} last night, not bad.", "Does anyone have a good recipe for {dish}?",
             "We ordered {dish} again, I should really learn to cook.", "The market had amazing tomatoes this week.",
             "I burnt the {dish}, the smoke alarm went off twice."],
    "sport": ["I ran {km} km this morning, my knees are complaining.", "Did anyone watch the match on {day}? What a finish.",
              "Yoga class was packed today.", "I am thinking of joining a climbing gym.", "Cycled to work, {km} km each way."],
    "films": ["We watched a documentary about octopuses, highly recommend.", "The new sci-fi series is slow but I like it.",
              "Anyone seen the film everyone is talking about? I fell asleep halfway.", "I rewatched an old comedy from the nineties."],
    "plans": ["Are we still on for {day}?", "I can do {day} after {time}, does that work?", "Let's book something for {day}.",
              "I might be a bit late on {day}, the train is unreliable.", "Should we invite the others for {day} too?"],
    "home": ["The neighbours are renovating, drilling since {time}.", "I finally assembled that bookshelf, one screw left over.",
             "Our heating broke again, landlord says {day}.", "I repotted all the plants, the balcony looks like a jungle.",
             "Internet was down all evening, I read a book instead."],
    "misc": ["Ha, that is so true.", "Sounds good to me.", "Oh no, really?", "That made me laugh.", "Fair point.",
             "I will think about it.", "Totally agree with you.", "Wait, what happened next?", "Good luck with that!",
             "Let me check my calendar.", "Same here, honestly.", "Thanks for sharing that."],
}
DISHES = ["risotto", "lentil soup", "banana bread", "dumplings", "shakshuka", "pad thai", "paella", "falafel", "lasagne"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "the weekend"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]


@dataclass
class Turn:
    index: int
    speaker: str
    content: str
    timestamp: datetime
    session_no: int


@dataclass
class Question:
    qid: str
    kind: str  # single-hop | multi-hop | temporal | long-range
    text: str
    evidence: list[int]
    answer: str


@dataclass
class Conversation:
    conv_id: str
    turns: list[Turn]
    questions: list[Question] = field(default_factory=list)


def _fill(rng: random.Random, template: str) -> str:
    return template.format(day=rng.choice(DAYS), month=rng.choice(MONTHS), time=f"{rng.randint(7, 20)}:{rng.choice(['00', '15', '30', '45'])}",
                           dish=rng.choice(DISHES), km=rng.randint(3, 25))


def _filler(rng: random.Random, speakers: list[str]) -> str:
    topic = rng.choice(list(FILLER_TOPICS))
    text = _fill(rng, rng.choice(FILLER_TOPICS[topic]))
    if rng.random() < 0.25:
        text = f"{rng.choice(speakers)}, {text if text.startswith('I ') else text[0].lower() + text[1:]}"
    if rng.random() < 0.3:
        more = _fill(rng, rng.choice(FILLER_TOPICS[rng.choice([t for t in FILLER_TOPICS if t != topic])]))
        text += " " + more
    return text


@dataclass
class _Plant:
    """Fact turns (speaker, text), distractor texts, and how to ask about them."""
    facts: list[tuple[str, str]]
    distractors: list[str]
    question: str
    answer: str
    kind: str


def _single_fact(rng: random.Random, who: str, used: set[str]) -> tuple[str, str, str, list[str]]:
    """(fact text, question, answer, distractors) about one speaker."""
    def pick(options: list[str]) -> str:
        free = [o for o in options if o not in used] or options
        choice = rng.choice(free)
        used.add(choice)
        return choice

    kind = rng.choice(["pet", "move", "job", "locker", "car", "instrument", "book", "sibling"])
    if kind == "pet":
        animal, name = rng.choice(ANIMALS), pick(PET_NAMES)
        return (f"We adopted a {animal} at the weekend, we named her {name}.", f"What is the name of {who}'s {animal}?", name,
                [f"My aunt's {animal} keeps escaping into the garden.", f"I saw a {animal} at the shelter that looked just like a {rng.choice(PET_NAMES).lower()}.",
                 f"{name} is such a funny name for a {rng.choice(['boat', 'café', 'band'])}."])
    if kind == "move":
        city = pick(CITIES)
        return (f"Big news: I signed the lease, I am moving to {city} in the spring.", f"Which city is {who} moving to?", city,
                [f"A friend of mine just got back from a conference in {city}.", "Moving flats is the worst, I still have boxes everywhere.",
                 f"The train to {rng.choice(CITIES)} was cancelled again."])
    if kind == "job":
        company, job = pick(COMPANIES), rng.choice(JOBS)
        return (f"I accepted the offer, I start as a {job} at {company} next month.", f"Which company is {who} going to work for?", company,
                [f"{company.split()[0]} is also the name of my gym, funny.", f"My cousin works as a {job} too, long hours.",
                 "I got an offer from a start-up but turned it down."])
    if kind == "locker":
        num = str(rng.randint(100, 999))
        return (f"Note to self and to you all: my locker at the pool is number {num}.", f"What is {who}'s locker number at the pool?", num,
                ["The pool changed all the locker codes, so annoying.", f"Bus {rng.randint(10, 99)} was late again.",
                 f"We need {rng.randint(100, 999)} signatures for the petition."])
    if kind == "car":
        car, colour = pick(CARS), rng.choice(COLOURS)
        return (f"I finally bought a car, a {colour} {car}, second hand but like new.", f"What car did {who} buy?", car,
                [f"My neighbour's {car.split()[0]} has been parked in my spot all week.", "Car insurance prices are ridiculous this year.",
                 f"I rented a {rng.choice(COLOURS)} van for the move."])
    if kind == "instrument":
        inst = pick(INSTRUMENTS)
        return (f"I signed up for {inst} lessons, first class is on Thursday.", f"Which instrument is {who} learning?", inst,
                [f"The concert last night had an amazing {inst} solo.", "My downstairs neighbour practises scales every evening.",
                 "Music lessons for kids are so expensive now."])
    if kind == "book":
        book = pick(BOOKS)
        return (f"My favourite book of all time is {book}, I reread it every winter.", f"What is {who}'s favourite book?", book,
                [f"There is a film adaptation of {book} coming out, apparently.", "I never finish any book I start, it is a problem.",
                 "The library near me closes early on Saturdays."])
    name, job = pick(RELATIVES), rng.choice(JOBS)
    return (f"My brother {name} just qualified as a {job}, we are so proud.", f"What does {who}'s brother do for a living?", job,
            [f"{name} from my old school is getting married, small world.", f"Being a {job} sounds exhausting.",
             "My brother never answers his phone."])


def _multi_hop(rng: random.Random, who: str, used: set[str]) -> _Plant:
    colleague = rng.choice([r for r in RELATIVES if r not in used] or RELATIVES)
    used.add(colleague)
    city = rng.choice([c for c in CITIES if c not in used] or CITIES)
    used.add(city)
    if rng.random() < 0.5:
        restaurant = rng.choice([r for r in RESTAURANTS if r not in used] or RESTAURANTS)
        used.add(restaurant)
        return _Plant(
            facts=[(who, f"We have a new colleague, {colleague}, who moved here from {city}."),
                   (who, f"{colleague} told me the best place for dinner is {restaurant}, we should try it.")],
            distractors=["Someone at work recommended a restaurant but I forgot the name.", f"{city} has great food, I heard.",
                         f"{rng.choice(RESTAURANTS)} was fully booked on Friday."],
            question=f"Which restaurant did {who}'s colleague from {city} recommend?", answer=restaurant, kind="multi-hop")
    place = rng.choice(PLACES)
    return _Plant(
        facts=[(who, f"My cousin {colleague} lives in {city} now, she loves it."),
               (who, f"{colleague} is going hiking in {place} in the summer, I am a bit jealous.")],
        distractors=["My cousin sent me photos from a hike last year.", f"Hiking in {rng.choice(PLACES)} is on my list.",
                     f"{city} is supposed to be lovely in summer."],
        question=f"Where is {who}'s cousin who lives in {city} going hiking?", answer=place, kind="multi-hop")


def _temporal(rng: random.Random, who: str, used: set[str]) -> _Plant:
    place = rng.choice([p for p in PLACES if p not in used] or PLACES)
    used.add(place)
    event = rng.choice([
        (f"I just got back from {place}, what a trip!", f"When did {who} get back from {place}?"),
        ("I passed my driving test this morning, still shaking.", f"When did {who} pass the driving test?"),
        ("We finally painted the living room today, it is dark green now.", f"When did {who} paint the living room?"),
        ("I ran my first half marathon today, 2 hours 5 minutes.", f"When did {who} run the first half marathon?"),
    ])
    if "driving test" in event[0] or "living room" in event[0] or "half marathon" in event[0]:
        used.add(event[0])
    return _Plant(facts=[(who, event[0])],
                  distractors=[f"Thinking about a trip to {place} next year.", "I failed my first driving test too, years ago.",
                               "We still have not decided on the paint colour."],
                  question=event[1], answer="(the date of the evidence turn)", kind="temporal")


def generate(seed: int, n_turns: int, n_questions: int, conv_id: str, start: datetime | None = None) -> Conversation:
    rng = random.Random(seed)
    speakers = rng.sample(PEOPLE, 4)
    start = start or datetime(2023, 1, 9, 19, 0, tzinfo=timezone.utc)
    used: set[str] = set()
    seen_questions: set[str] = set()
    plants: list[_Plant] = []
    counts = {"single-hop": 0.35, "multi-hop": 0.2, "temporal": 0.2, "long-range": 0.25}
    target = {k: max(1, round(v * n_questions)) for k, v in counts.items()}
    for kind, n in target.items():
        made = 0
        while made < n:
            who = rng.choice(speakers)
            if kind == "multi-hop":
                plant = _multi_hop(rng, who, used)
            elif kind == "temporal":
                plant = _temporal(rng, who, used)
            else:
                fact, q, a, distract = _single_fact(rng, who, used)
                plant = _Plant(facts=[(who, fact)], distractors=distract, question=q, answer=a, kind=kind)
            if plant.question in seen_questions:
                continue
            seen_questions.add(plant.question)
            plants.append(plant)
            made += 1

    # Slots: facts live between 2% and (end - 200 turns); long-range ones in the first tenth.
    slots: dict[int, tuple[str, str, int, int]] = {}  # index -> (speaker, text, plant no, fact no)
    distractor_slots: dict[int, str] = {}
    last_ok = n_turns - 200

    def free_slot(lo: int, hi: int) -> int:
        while True:
            i = rng.randint(lo, hi)
            if i not in slots and i not in distractor_slots:
                return i

    for p_no, plant in enumerate(plants):
        lo, hi = (int(n_turns * 0.02), int(n_turns * 0.1)) if plant.kind == "long-range" else (int(n_turns * 0.12), last_ok)
        previous = lo
        for f_no, (who, text) in enumerate(plant.facts):
            i = free_slot(previous, hi if f_no == len(plant.facts) - 1 else (previous + hi) // 2)
            slots[i] = (who, text, p_no, f_no)
            previous = i + 1
        for d in plant.distractors:
            distractor_slots[free_slot(int(n_turns * 0.02), n_turns - 60)] = d

    turns: list[Turn] = []
    evidence: dict[int, list[int]] = {}
    clock = start
    session_no = 0
    next_break = rng.randint(30, 70)
    for i in range(n_turns):
        if i == next_break:
            session_no += 1
            clock = (clock + timedelta(days=rng.randint(1, 6))).replace(hour=rng.randint(8, 21), minute=rng.randint(0, 59))
            next_break = i + rng.randint(30, 70)
        else:
            clock += timedelta(minutes=rng.randint(1, 4), seconds=rng.randint(0, 59))
        if i in slots:
            who, text, p_no, f_no = slots[i]
            evidence.setdefault(p_no, []).append(i)
        elif i in distractor_slots:
            who, text = rng.choice(speakers), distractor_slots[i]
        else:
            who = rng.choice([s for s in speakers if not turns or s != turns[-1].speaker])
            text = _filler(rng, [s for s in speakers if s != who])
        turns.append(Turn(i, who, text, clock, session_no))
    conv = Conversation(conv_id, turns)
    for p_no, plant in enumerate(plants):
        ev = sorted(evidence[p_no])
        answer = f"{turns[ev[0]].timestamp:%Y-%m-%d}" if plant.kind == "temporal" else plant.answer
        conv.questions.append(Question(f"{conv_id}-q{p_no}", plant.kind, plant.question, ev, answer))
    return conv
