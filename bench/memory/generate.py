"""Realistic two-person chat with known evidence turns, generated offline and deterministically.

Why it looks like this: a benchmark built from templates whose questions repeat the evidence's
words rewards keyword search and says nothing about real chat. Real long-term chat exports are two
friends talking across weeks, mostly small talk and reactions, with the facts that matter said once,
casually, in words the later question does not use. So:

* **Two speakers, many dated sessions.** Sessions are days or weeks apart; timestamps are naive ISO
  (no timezone), the way chat exports carry them. Each session opens with greetings and closes with a
  goodbye; between them: reactions ("haha nice!"), small talk on ~15 topics, long rambling turns,
  photo captions ("[shares a photo of ...]"), typos, emojis, names in several scripts (José, Zoë,
  Łukasz, 李娜, ...).
* **Questions paraphrase.** Every fact is said with an *evidence* vocabulary and asked with a
  different *question* vocabulary ("adopted a tabby kitten" / "What pet does Zoë have?";
  "pulled another night shift on the ward" / "What does José do for a living?").
* **Relative dates.** Events are told as "last Friday", "two weeks ago", "yesterday"; the answer is
  the date resolved against the session's date, and some questions name that date instead.
* **Coreference.** A relative is introduced by name once ("my sister Ilse"); later turns say "she".
* **Facts spread over sessions.** Multi-hop questions need two or three turns from different
  sessions (a relative's move + her new job; three hobbies picked up months apart).
* **Adversarial distractors.** The other speaker has the same kind of fact with another value
  (both have pets, both went on a trip), and the same speaker has the same kind of event at another
  time.

Five categories, as in public long-conversation memory benchmarks: single-hop, multi-hop, temporal,
open-domain (inference: "Would Zoë enjoy a beach holiday?"), adversarial-distractor. Every question
lists the indexes of its evidence turns and a reference answer. Evidence-in-prompt is checked on the
turn's whole text; `Turn.key` is the sentence that carries the fact (for snippet-level scoring).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

KINDS = ["single-hop", "multi-hop", "temporal", "open-domain", "adversarial-distractor"]


@dataclass
class Turn:
    index: int
    speaker: str
    content: str
    timestamp: datetime  # naive, as exports carry it
    session_no: int
    key: str | None = None  # the sentence that carries a fact (a substring of content), for evidence turns


@dataclass
class Question:
    qid: str
    kind: str
    text: str
    evidence: list[int]
    answer: str


@dataclass
class Conversation:
    conv_id: str
    speakers: tuple[str, str]
    turns: list[Turn]
    questions: list[Question] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Vocabularies
# --------------------------------------------------------------------------------------------------

WOMEN = ["Zoë", "Caroline", "Aoife", "Siobhán", "李娜", "Małgorzata", "Renée", "Priyanka", "Ayşe", "Dagný", "Ngozi",
         "Ana-Lucía", "Inès", "Freya", "Mei-Ling", "Oksana", "Thandiwe", "Noor", "Ingrid", "Yasmin"]
MEN = ["José", "Łukasz", "Søren", "Kwame", "Tomás", "Nguyễn Minh", "Björn", "Jean-Luc", "Rahul", "Mateo", "Chidi",
       "Oğuz", "Darius", "Hamid", "Kenji", "Piotr", "Aleksandr", "Eamon", "Matías", "Jürgen"]
KIN_WOMEN = ["Ilse", "Marta", "Saoirse", "Lucía", "Wiktoria", "Hana", "Élodie", "Greta", "Amara", "Daniela", "Kasia", "Rosa"]
KIN_MEN = ["Teodor", "Bram", "Anselm", "Rafa", "Dmitri", "Emre", "Kofi", "Joaquín", "Mikkel", "Ruairí", "Sven", "Felipe"]
# relation -> (gender, words the speaker uses, words a question uses)
RELATIONS = {
    "sister": ("f", ["my sister", "my little sister", "my big sis"], ["sister", "sibling"]),
    "brother": ("m", ["my brother", "my younger brother", "my bro"], ["brother", "sibling"]),
    "cousin_f": ("f", ["my cousin"], ["cousin", "relative"]),
    "cousin_m": ("m", ["my cousin"], ["cousin", "relative"]),
    "best_friend_f": ("f", ["my best friend", "my oldest friend"], ["closest friend", "best mate"]),
    "uncle": ("m", ["my uncle"], ["uncle", "relative"]),
}
PRON = {"f": ("she", "her", "her"), "m": ("he", "him", "his")}

CITIES = ["Lisbon", "Kraków", "Montréal", "Tallinn", "Bilbao", "Aarhus", "Ljubljana", "Porto", "Gdańsk", "Cork", "Utrecht",
          "Valparaíso", "Trondheim", "Thessaloniki", "Brno", "Turku", "Guadalajara", "Kyoto", "Daejeon", "Tbilisi"]
WORKPLACES = [("an aquarium", ["aquarium", "marine centre"]), ("a bakery", ["bakery"]), ("a bike shop", ["bicycle shop"]),
              ("the city library", ["library"]), ("a vet clinic", ["animal clinic"]), ("a bookshop", ["book store"]),
              ("a brewery", ["brewery"]), ("a climbing gym", ["bouldering gym"]), ("a tech startup", ["start-up"]),
              ("a primary school", ["school"]), ("a recording studio", ["music studio"]), ("a botanical garden", ["garden"])]

# species -> (how the owner talks about it, what a question calls it, names)
PETS = {
    "cat": (["a tabby kitten", "a little black kitten", "a grumpy old tomcat", "a ginger kitten"], ["cat"],
            ["Oscar", "Mochi", "Biscuit", "Pixel", "Salem", "Nimbus", "Tofu", "Miso"]),
    "dog": (["a golden retriever pup", "a scruffy terrier mix", "a rescue greyhound", "a corgi puppy"], ["dog"],
            ["Waffles", "Rocket", "Bruno", "Juniper", "Pepper", "Ziggy", "Luna", "Chorizo"]),
    "rabbit": (["a lop-eared bunny", "two fluffy bunnies (well, one is mine)", "a dwarf bunny"], ["rabbit"],
               ["Clover", "Bun Bun", "Thumper", "Pudding"]),
    "parrot": (["a very loud cockatiel", "a budgie who screams at 6am", "an african grey"], ["bird", "parrot"],
               ["Kiwi", "Mango", "Sunny", "Captain"]),
    "tortoise": (["a tiny tortoise", "a Hermann's tortoise"], ["tortoise", "reptile"], ["Sheldon", "Speedy", "Gus"]),
}
PET_LATER = [
    "{pet} knocked the plant off the windowsill again, little monster 🙄",
    "[shares a photo of {pet} asleep in a laundry basket]",
    "{pet} has decided my laptop is a bed now lol",
    "had to take {pet} for a checkup, all fine thank god",
    "{pet} says hi 😂",
    "[shares a photo of {pet} staring at the camera] judging me as usual",
]

# Evidence lines may carry "natural" questions after " || " (alternatives split by " | "): how a person
# who remembers the conversation would ask, sharing a word or two with it. Every storyline also has
# paraphrased questions that share none. NATURAL is how often a category asks the natural way (real
# questions about chat share some words with it far more often for single facts and dates than for
# inferences or facts spread over sessions).
NATURAL = {"single-hop": 0.6, "temporal": 0.7, "multi-hop": 0.25, "open-domain": 0.3, "adversarial-distractor": 0.5}

# occupation -> (evidence lines, answer); JOB_QUESTIONS are the paraphrases
JOBS = {
    "nurse": (["pulled another night shift on the ward, three admissions in the last hour and the IV pump kept beeping"
               " || What kind of shift work does {a} do? | What is {a}'s job on the ward?",
               "the ER was rammed on my shift tonight, I didn't sit down once in twelve hours but the patients were sweet"
               " || What kind of shift work does {a} do? | What job has {a} looking after patients?"],
              "a nurse (hospital ward / ER shifts)"),
    "teacher": (["my year fives were absolutely feral today, and I still have thirty essays on volcanoes to mark"
                 " || Why does {a} have essays to mark? | What does {a} do with the year fives?",
                 "parents' evening ran till 9 and I still have essays to mark, one dad argued about a B minus for twenty minutes"
                 " || Why does {a} have essays to mark? | Why did {a} have a parents' evening?"],
                "a primary school teacher"),
    "developer": (["pushed a hotfix to prod at 11pm because my code broke the login page, never deploying on a friday again"
                   " || What job has {a} writing code? | Why was {a} deploying a hotfix?",
                   "spent all day chasing a memory leak in our backend code, turns out it was a cache nobody cleared"
                   " || What job has {a} writing code? | What kind of work has {a} chasing a memory leak?"],
                  "a software developer"),
    "chef": (["service in the kitchen was brutal tonight, 140 covers and the fryer died halfway through"
              " || What is {a}'s role in the kitchen? | What does {a} do during service?",
              "head chef made me redo the whole sauce station prep, the kitchen was chaos and my forearms are dead"
              " || What is {a}'s role in the kitchen? | Who does {a} work under, and doing what?"],
             "a chef / line cook in a restaurant"),
    "electrician": (["rewired a whole kitchen today, whoever did it before used speaker cables for the oven lol"
                     " || What trade has {a} working with cables? | Why was {a} rewiring a kitchen?",
                     "spent the morning in a loft pulling new cables for a fuse board, 38 degrees up there"
                     " || What trade has {a} working with cables? | Why was {a} in a loft with a fuse board?"],
                    "an electrician"),
    "accountant": (["it's tax season so I basically live in spreadsheets now, reconciled 400 invoices today"
                    " || What job has {a} reconciling invoices? | Why is tax season busy for {a}?",
                    "client sent me a shoebox of receipts and invoices. an actual shoebox. for their year end"
                    " || What job has {a} dealing with invoices? | What kind of clients does {a} have?"],
                   "an accountant"),
    "bus driver": (["drove the number 42 bus route all day, a guy tried to pay with a 50 and a pigeon got on at the market"
                    " || What is {a}'s job on the bus? | Which route does {a} work on?",
                    "early start on the depot rota, first bus out at 5:10"
                    " || What is {a}'s job on the bus? | Why does {a} start so early at the depot?"],
                   "a bus driver"),
    "vet": (["had to stitch up a labrador who ate a fence post at the clinic, he wagged the whole time"
             " || What does {a} do at the clinic? | Why was {a} stitching up a labrador?",
             "three cat neuters and a hamster with a cold at the clinic before lunch, glamorous"
             " || What does {a} do at the clinic? | Who does {a} treat at work?"],
            "a veterinarian"),
}
JOB_QUESTIONS = ["What does {a} do for a living?", "What is {a}'s profession?", "How does {a} earn money?",
                 "What kind of work is {a} in?", "What is {a}'s line of work?"]

# event -> (evidence lines with {rel} and natural questions, paraphrased "when" questions, activity for "what did X do on DATE")
EVENTS = {
    "museum": (["took the kids to see the dinosaur skeletons at the natural history place {rel}, the little one cried at the T-rex 😂"
                " || When did {a} see the dinosaur skeletons? | When did {a} take the kids to see dinosaurs?",
                "went to that new exhibition of old maps {rel}, spent three hours in there"
                " || When did {a} go to the exhibition of old maps? | When did {a} see the maps exhibition?"],
               ["When did {a} visit a museum?", "When did {a} go and look at a collection?"], "went to a museum"),
    "race": (["ran my first 10k {rel}!! legs are jelly but I didn't walk once || When did {a} run a 10k?",
              "did the charity fun run {rel}, finished in 58 min which is fine ok || When did {a} do the charity fun run?"],
             ["When did {a} complete a running race?", "When did {a} take part in a road race?"], "ran a race"),
    "pottery": (["finally went to that wheel-throwing class {rel}, my bowl looks like a hat || When did {a} go to the wheel-throwing class?",
                 "tried clay for the first time {rel}, got it all over my jeans || When did {a} first try working with clay?"],
                ["When did {a} try pottery?", "When did {a} attend a ceramics lesson?"], "took a pottery class"),
    "concert": (["we saw Fleet Foxes live {rel}, I cried during the encore not gonna lie || When did {a} see Fleet Foxes live?",
                 "got dragged to a jazz gig in a basement bar {rel} and honestly loved it || When did {a} go to the jazz gig?"],
                ["When did {a} go to a concert?", "When did {a} see a band perform?"], "went to a concert"),
    "camping": (["slept in a tent by the lake {rel}, froze all night but the stars were unreal || When did {a} sleep in a tent by the lake?",
                 "pitched up in the woods with the kids {rel}, marshmallows everywhere || When did {a} take the kids to the woods?"],
                ["When did {a} go camping?", "When did {a} spend a night outdoors?"], "went camping"),
    "interview": (["had the big job interview {rel}, they asked me where I see myself in five years ugh"
                   " || When was {a}'s big job interview? | When did {a} have the job interview?",
                   "the panel grilling {rel} went ok I think? three people and a whiteboard task || When did {a} face the interview panel?"],
                  ["When was {a} interviewed for a position?", "When did {a} try out for a new role?"], "had a job interview"),
    "support_group": (["went to the LGBTQ support meetup {rel}, everyone was so welcoming || When did {a} go to the LGBTQ support group?",
                       "sat in on a grief circle at the community centre {rel}, it helped more than I thought"
                       " || When did {a} go to the grief circle?"],
                      ["When did {a} attend a support group?", "When did {a} go to a group meeting for support?"],
                      "attended a support group"),
    "tattoo": (["got inked {rel}!! a little fern on my wrist, hurt way less than I expected || When did {a} get the little fern on the wrist?",
                "the tattoo artist finished my sleeve {rel}, six hours in the chair || When did {a} finish the tattoo sleeve?"],
               ["When did {a} get a tattoo?", "When did {a} get new body art?"], "got a tattoo"),
    "volunteer": (["spent {rel} sorting tins at the food bank, they were so short of people || When did {a} help at the food bank?",
                   "did a shift at the soup kitchen {rel}, peeled about a thousand potatoes || When did {a} work at the soup kitchen?"],
                  ["When did {a} volunteer?", "When did {a} help out at a charity?"], "volunteered"),
    "driving": (["PASSED MY DRIVING TEST {rel} 🎉 only one minor for mirrors || When did {a} pass the driving test?",
                 "took the road exam {rel}, third time lucky! || When did {a} take the road exam?"],
                ["When did {a} get a licence to drive?", "When did {a} qualify to drive a car?"], "passed a driving test"),
    "wedding": (["my college roommate got married {rel}, I did a reading and my voice cracked || When did {a}'s college roommate get married?",
                 "danced till 2am at a friend's wedding {rel}, feet destroyed || When did {a} go to a friend's wedding?"],
                ["When did {a} attend a marriage ceremony?", "When was the nuptial celebration {a} went to?"], "went to a wedding"),
    "beach_cleanup": (["we picked up litter along the shore with the local group {rel}, filled 20 bags"
                       " || When did {a} pick up litter along the shore?",
                       "joined the coast cleanup crew {rel}, found a whole shopping trolley in the sand || When did {a} join the coast cleanup?"],
                      ["When did {a} take part in a beach clean-up?", "When did {a} help clean the seaside?"],
                      "joined a beach clean-up"),
}

# hobby groups for list-style multi-hop: group -> (paraphrased questions, natural questions, [(evidence, answer item)])
HOBBY_GROUPS = {
    "arts": (["What creative hobbies has {a} taken up?", "Which arts and crafts does {a} do?"],
             ["What has {a} been making, from watercolours to the kiln?", "What crafts has {a} tried, like knitting or sketching?"],
             [("finished my first watercolour of the harbour, it's wonky but I love it", "painting"),
              ("my lopsided mug came out of the kiln and it actually holds tea", "pottery"),
              ("knitted a whole scarf during the train strikes lol, one sleeve of a jumper next", "knitting"),
              ("been sketching people on the bus, nobody has noticed yet 👀", "drawing"),
              ("the embroidery hoop is my new therapy, did a little mushroom", "embroidery")]),
    "sports": (["What sports does {a} do?", "Which physical activities is {a} into?"],
               ["What does {a} do to keep fit, swim or climb or yoga?"],
               [("did the 7am lane swim again, 40 lengths before work", "swimming"),
                ("topped out on a purple route at the wall, fingers are shredded", "climbing"),
                ("five-a-side on tuesday, I scored with my knee, counts", "football"),
                ("hot yoga nearly killed me but I'm going back thursday", "yoga"),
                ("cycled to the coast and back, 90 km, my bum hurts", "cycling")]),
    "travel": (["Which places has {a} travelled to?", "What trips has {a} taken?"],
               ["Which cities has {a} been back from lately?"],
               [("back from {city1}! the pastries alone were worth the flight", "{city1}"),
                ("{city2} was grey and rainy the whole weekend but the museums were great", "{city2}"),
                ("just landed from {city3}, I already miss the street food", "{city3}")]),
    "kids_activities": (["What activities has {a} done with the children?", "What has {a} done with the little ones lately?"],
                        ["What has {a} done with the kids?"],
                        [("took the kids to the planetarium, the 6yo now wants to be an astronaut", "the planetarium"),
                         ("we built a massive blanket fort with the kids, it's still up", "built a fort"),
                         ("the kids and I baked bread, there is flour in the ceiling somehow", "baked bread"),
                         ("went strawberry picking with my two monsters, they ate more than they picked", "strawberry picking")]),
}

# open-domain inference: (paraphrased questions, evidence lines with natural questions, answer)
INFERENCES = [
    (["Would {a} enjoy a beach holiday?", "Is a week lying in the sun {a}'s idea of fun?"],
     ["I burn in like ten minutes, give me a drizzly mountain hut any day || Would {a} pick a mountain hut over a sunny resort?",
      "honestly lying on sand bores me to tears || Would {a} enjoy lying on the sand for a week?"],
     "probably not: burns easily, prefers mountains"),
    (["Is {a} likely a morning person?", "Does {a} tend to wake up early?"],
     ["up at 5:30 for my swim again, the pool is empty at that hour 😌 || Is {a} the type to be at the pool at 5:30?",
      "already did a workout and meal prep and it's 7am lol || Does {a} finish a workout before 7am?"],
     "yes"),
    (["What career might {a} pursue?", "What profession could {a} move into in future?"],
     ["every saturday at the animal shelter now, cleaning kennels and walking the big dogs"
      " || What might {a} study, given the time at the animal shelter?",
      "looked up the veterinary nursing course at the college, applications close in march || What course might {a} apply for?"],
     "veterinary nursing / working with animals"),
    (["Would {a} be considered an introvert?", "Does {a} prefer quiet company to big crowds?"],
     ["best part of the party was hiding in the kitchen with the host's dog tbh || Does {a} enjoy being the centre of the party?",
      "I need a full day alone after a big social weekend, recharging my battery || Does {a} need time alone to recharge?"],
     "likely yes"),
    (["Does {a} probably have children?", "Is {a} likely a parent?"],
     ["school run chaos this morning, the little one lost a shoe AGAIN || Does {a} do a school run?",
      "bedtime took two hours, three stories and a glass of water || Whose bedtime stories does {a} read?"],
     "yes"),
    (["What might {a} think about owning a car?", "Would {a} be likely to buy a car soon?"],
     ["sold the old hatchback, it's bike everywhere now and the city feels so much nicer on two wheels"
      " || Would {a} go back to driving instead of the bike?",
      "cargo bike does the big shop fine, don't miss parking one bit || Would {a} miss parking a car?"],
     "probably not keen; prefers cycling"),
    (["Where might {a}'s family roots be?", "What heritage might {a} have?"],
     ["made my abuela's arroz con pollo tonight, tasted like being eight again in her kitchen in Oaxaca"
      " || Where might {a}'s abuela be from?",
      "video called mi tía for her birthday, she still thinks I'm too thin || What language might {a} speak with a tía?"],
     "likely Mexican heritage"),
    (["Would {a} like a gift card for a bookshop?", "Is {a} a big reader?"],
     ["finished my fourth novel this month, the library lady knows me by name now || How many novels does {a} get through?",
      "stayed up till 2 to finish a thriller, zero regrets || Would {a} stay up late for a good thriller?"],
     "yes, reads a lot"),
]

# one-off facts: kind -> (evidence lines with {x} and natural questions, paraphrased questions, values)
FACTS = {
    "hometown": (["grew up in a tiny village outside {x}, one bus a day and everyone knew your business"
                  " || Which village did {a} grow up near?",
                  "going back to {x} for my nan's 90th, haven't been home in two years || Where is {a}'s home?"],
                 ["Where is {a} originally from?", "Which place is {a}'s birthplace?", "Where is {a}'s hometown?"],
                 ["Cork", "Gdańsk", "Guadalajara", "Thessaloniki", "Daejeon", "Tbilisi", "Valparaíso", "Trondheim"]),
    "allergy": (["can't even be in the same room as {x}, my throat closes up, allergic since forever and an epipen in every bag"
                 " || What is {a} allergic to?",
                 "ended up in A&E because the dessert had {x} in it and nobody told me, I'm so allergic || What is {a} allergic to?"],
                ["Which food makes {a} ill?", "What does {a} have to avoid eating?"],
                ["peanuts", "shellfish", "sesame", "kiwi", "walnuts"]),
    "partner": (["{x} surprised me with breakfast in bed for our anniversary, three years already!"
                 " || Who did {a} celebrate an anniversary with?",
                 "date night with {x} tonight, we're finally trying that Georgian place || Who is {a} going on date night with?"],
                ["Who is {a}'s partner?", "Who is {a} in a relationship with?", "Who is {a} seeing romantically?"],
                ["Hiroshi", "Valentina", "Oisín", "Leilani", "Bartosz", "Camille", "Tariq", "Solveig"]),
    "language": (["my {x} lessons are paying off, ordered a whole meal without pointing at the menu"
                  " || Which language is {a} taking lessons in?",
                  "doing 20 minutes of {x} on the app every night, the owl is relentless || Which language does {a} do on the app?"],
                 ["Which foreign tongue is {a} studying?", "What language has {a} been learning?"],
                 ["Portuguese", "Korean", "Polish", "Italian", "Japanese", "Greek", "Swahili"]),
}

# adversarial pairs: facts both speakers have, different values. kind -> (paraphrased questions, evidence lines, values)
ADVERSARIAL = {
    "instrument": (["What instrument is {a} learning to play?", "Which instrument has {a} been working on?"],
                   ["my {x} teacher says my bowing is getting less painful to listen to || Which instrument does {a}'s teacher teach?",
                    "practised the {x} for an hour, the neighbours must love me || What did {a} practise for an hour?",
                    "bought a second-hand {x} off a guy on marketplace, it smells like a church || What did {a} buy second-hand?"],
                   ["cello", "ukulele", "saxophone", "violin", "keyboard", "banjo", "trumpet"]),
    "book": (["What book did {a} recommend?", "Which novel did {a} suggest reading?"],
             ["you HAVE to read {x}, I couldn't put it down || What does {a} say you have to read?",
              "just finished {x}, best thing I've read all year, borrow my copy || What is the best thing {a} has read all year?"],
             ["Piranesi", "The Overstory", "Klara and the Sun", "Circe", "Stoner", "Middlemarch", "Pachinko", "The Remains of the Day"]),
    "holiday": (["Where did {a} go on holiday?", "What destination did {a} visit on vacation?"],
                ["back from a week in {x}, already planning to go again || Where did {a} spend a week?",
                 "we spent ten days in {x}, I'm so tanned lol || Where did {a} spend ten days?"],
                ["Crete", "Iceland", "the Dolomites", "Morocco", "Sicily", "Vietnam", "Patagonia", "the Azores", "Slovenia"]),
    "car": (["What car does {a} drive?", "Which vehicle did {a} buy?"],
            ["picked up the {x} from the dealer, it still smells new || What did {a} pick up from the dealer?",
             "the {x} finally passed its inspection, cost me a fortune || What passed its inspection for {a}?"],
            ["Skoda Octavia", "Toyota Yaris", "Volvo V60", "Renault Zoe", "Mazda 3", "Kia Niro", "Fiat Panda", "Honda Jazz"]),
    "dish": (["What dish did {a} cook for the family dinner?", "What meal did {a} make for the relatives?"],
             ["made a giant pot of {x} for everyone on sunday, zero leftovers || What did {a} make a giant pot of?",
              "the {x} for mum's birthday turned out perfect || What did {a} cook for mum's birthday?"],
             ["lasagne", "biryani", "pierogi", "feijoada", "shakshuka", "ramen", "moussaka", "paella"]),
}

# --------------------------------------------------------------------------------------------------
# Small talk
# --------------------------------------------------------------------------------------------------

GREETINGS = ["Hey {o}! long time no chat, how've you been?", "Heyyy 👋", "Good morning!! ☀️", "Hi {o}! sorry I vanished, life has been a lot",
             "hiya, you around?", "{o}!! guess what", "yo", "Hey hey, happy friday", "morning :) how's your week going",
             "Hi! quick one before I forget", "ok I'm finally free, how are you??"]
GREET_REPLIES = ["Hey! all good here, just super busy", "heyy! yeah doing ok, tired but ok", "Hi!! so nice to hear from you 😊",
                 "I'm good! what's new with you?", "omg hi, I was literally about to message you", "Not bad! you?",
                 "hiii, surviving 😅"]
GOODBYES = ["gotta run, talk soon!", "night night 😴", "ok ttyl! 💛", "Take care, speak soon", "byeee", "have a good one!",
            "ok dinner's ready, chat later x", "I need to sleep lol, bye!", "catch you later 👋"]
REACTIONS = ["haha nice!", "omg 😂😂", "that's awesome!!", "aww", "no way!", "lol same", "wow, congrats!!", "ugh that sucks 😕",
             "so true", "hahaha", "yesss", "😍", "aww that's so sweet", "oh nooo", "wait really?", "love that for you",
             "ha classic", "🙌", "omg stop", "that's wild", "so proud of you!!", "hmm fair", "makes sense", "lmaooo",
             "I felt that", "same tbh", "sounds lovely", "ooh nice one", "yikes", "brilliant 👏"]
QUESTIONS = ["how was your weekend?", "what are you up to tonight?", "did you end up going?", "how's the weather over there?",
             "any plans for the holidays?", "how's work treating you?", "did you watch the match?", "what are you reading at the moment?",
             "how's the family?", "are you still doing that class?", "did you sort out the flat thing?", "how did it go??",
             "what did you have for dinner lol", "have you seen the new season yet?"]
TOPIC_LINES = [
    "it has been raining nonstop since {day}, my shoes are never going to dry",
    "finally some sun today, had lunch on the steps outside",
    "the heating in our building broke again, landlord says {day} maybe",
    "I'm so behind on everything, my inbox is a crime scene",
    "made {dish} last night, not bad for a first try",
    "we ordered {dish} again, I really need to learn to cook",
    "the market had amazing tomatoes this week, bought way too many",
    "burnt the {dish}, smoke alarm went off twice 🙃",
    "watched a documentary about octopuses, highly recommend",
    "that new sci-fi series is slow but I kind of like it",
    "fell asleep halfway through the film everyone is talking about",
    "my neighbour's cat keeps coming in through the window, it's basically half mine now",
    "walked past the hospital and the queue for the car park was insane",
    "there's a new exhibition opening in town, might go sometime",
    "my friend's sister just moved abroad, everyone's leaving lol",
    "the gym was packed, everyone's new year resolutions I guess",
    "train was cancelled AGAIN, waited 40 minutes on the platform",
    "I need a holiday so badly, even a weekend somewhere",
    "my phone screen cracked, I'm living on the edge now",
    "spent the whole {day} cleaning the flat, found a sock from 2019",
    "my mum called to ask how to send a photo, took 45 minutes",
    "tried that bakery on the corner, the cinnamon buns are dangerous",
    "work is quiet this week which is suspicious",
    "went for a long walk by the river, so many dogs",
    "I repotted all my plants, the balcony is a jungle now",
    "the kids next door are learning the recorder. every. single. evening.",
    "I think I'm getting a cold, everyone at work has it",
    "got a parking ticket for being 4 minutes late, outrageous",
    "the concert tickets sold out in like two minutes, so annoying",
    "bought a new duvet and my life has changed",
    "honestly just want to stay in with a book this weekend",
    "there was a fire drill in the middle of my meeting lol",
    "my brother's band is playing on {day}, probably terrible but I'll go",
    "we might repaint the living room, thinking green?",
    "saw a fox on the way home, it just stared at me",
    "my flatmate adopted a sourdough starter, it has a name",
]
PHOTOS = ["a golden retriever on a beach", "a bowl of ramen with a soft egg", "a sunset over the harbour", "a messy desk with three mugs",
          "a snowy street with footprints", "a cake that collapsed on one side", "a mountain lake", "a cat sleeping on a keyboard",
          "two kids in rain boots jumping in a puddle", "a handwritten shopping list", "a plate of dumplings", "a crowded train platform",
          "a new pair of running shoes", "a bookshelf full of paperbacks", "a bike leaning on a fence", "fireworks over a river"]
RAMBLE_OPENERS = ["ok so long story but", "honestly I don't even know where to start,", "ugh ok so basically", "random update:",
                  "so this is going to sound silly but", "not gonna lie,"]
RAMBLE_FILLERS = ["anyway", "idk", "lol", "which, fine", "but whatever", "you know how it is", "so yeah", "haha"]
DISHES = ["risotto", "lentil soup", "banana bread", "dumplings", "shakshuka", "pad thai", "falafel", "chilli", "curry"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
LEADS = ["how've you been?", "what's new?", "anything exciting happen?", "how was your week?", "tell me everything", "so what's the news?"]


def _split(line: str) -> tuple[str, list[str]]:
    """'evidence || natural question | another' -> (evidence, [natural questions])."""
    text, _, naturals = line.partition(" || ")
    return text, [q for q in naturals.split(" | ") if q]


def _typo(rng: random.Random, text: str) -> str:
    """One or two human typos: swapped letters, a dropped letter, a doubled letter, lower-case start."""
    words = text.split(" ")
    for _ in range(rng.choice([1, 1, 2])):
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) < 4 or not w.isalpha():
            continue
        j = rng.randrange(1, len(w) - 2)
        op = rng.random()
        if op < 0.4:
            w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
        elif op < 0.7:
            w = w[:j] + w[j + 1:]
        else:
            w = w[:j] + w[j] + w[j:]
        words[i] = w
    out = " ".join(words)
    return out[0].lower() + out[1:] if rng.random() < 0.5 else out


def _fill(rng: random.Random, template: str) -> str:
    return template.format(day=rng.choice(WEEKDAYS), dish=rng.choice(DISHES))


def _smalltalk(rng: random.Random, other: str) -> str:
    r = rng.random()
    if r < 0.28:
        text = rng.choice(REACTIONS)
    elif r < 0.38:
        text = rng.choice(QUESTIONS)
    elif r < 0.46:
        caption = f"[shares a photo of {rng.choice(PHOTOS)}]"
        text = caption if rng.random() < 0.5 else f"{rng.choice(['look at this!', 'lol', 'this was today', 'omg'])} {caption}"
    elif r < 0.58:
        parts = [rng.choice(RAMBLE_OPENERS)] + [_fill(rng, rng.choice(TOPIC_LINES)) + ("," if rng.random() < 0.5 else ".")
                                                  for _ in range(rng.randint(2, 4))]
        parts.insert(rng.randint(1, len(parts)), rng.choice(RAMBLE_FILLERS))
        text = " ".join(parts).rstrip(",.") + rng.choice([".", "...", " 😅", ""])
    else:
        text = _fill(rng, rng.choice(TOPIC_LINES))
        if rng.random() < 0.3:
            text += " " + rng.choice(["😂", "🙃", "😩", "✨", "lol", "haha", "!!", "ugh"])
        if rng.random() < 0.15:
            text = f"{other}, {text}"
    if rng.random() < 0.15:
        text = _typo(rng, text)
    return text


# --------------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------------

def _fmt(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


def _relative(rng: random.Random, when: date) -> tuple[str, date, str]:
    """A relative-date phrase said on `when`, the date it points at, and the reference answer."""
    choice = rng.choice(["yesterday", "weekday", "weekday", "weeks", "weekend", "days", "month"])
    if choice == "yesterday":
        d = when - timedelta(days=1)
        return rng.choice(["yesterday", "yesterday evening", "last night"]), d, _fmt(d)
    if choice == "weekday":
        back = rng.randint(2, 7)
        d = when - timedelta(days=back)
        return f"last {WEEKDAYS[d.weekday()]}", d, _fmt(d)
    if choice == "weeks":
        n = rng.choice([1, 2, 3])
        d = when - timedelta(weeks=n)
        phrase = {1: "a week ago", 2: "two weeks ago", 3: "three weeks ago"}[n]
        return phrase, d, f"the week of {_fmt(d)}"
    if choice == "weekend":
        back = (when.weekday() - 5) % 7 or 7  # most recent Saturday strictly before
        d = when - timedelta(days=back)
        return "last weekend", d, f"the weekend of {_fmt(d)}"
    if choice == "days":
        n = rng.choice([2, 3, 4])
        d = when - timedelta(days=n)
        return f"{['', '', 'two', 'three', 'four'][n]} days ago", d, _fmt(d)
    first = when.replace(day=1) - timedelta(days=1)
    return "last month", first, f"{first:%B %Y}"


# --------------------------------------------------------------------------------------------------
# Storylines: beats placed in sessions, questions referring to beats by label
# --------------------------------------------------------------------------------------------------

@dataclass
class Beat:
    label: str
    session: int
    speaker: str
    text: str
    key: str
    lead: str | None = None  # the other speaker's turn just before
    follow: str | None = None  # the other speaker's reaction just after


@dataclass
class _QSpec:
    kind: str
    text: str
    labels: list[str]
    answer: str


class _Builder:
    """Plans storylines for one conversation, then lays out turns around them."""

    def __init__(self, rng: random.Random, speakers: tuple[str, str], genders: tuple[str, str], session_dates: list[datetime]):
        self.rng = rng
        self.speakers = speakers
        self.genders = genders
        self.dates = session_dates
        self.beats: list[Beat] = []
        self.questions: list[_QSpec] = []
        self.used: set[str] = set()
        self.persona: dict[tuple[str, str], tuple] = {}  # (speaker, storyline) -> what was planted, so a person stays consistent
        self.n = 0

    # helpers ------------------------------------------------------------------------------------
    def other(self, who: str) -> str:
        return self.speakers[1] if who == self.speakers[0] else self.speakers[0]

    def pick(self, options: list[str]) -> str:
        free = [o for o in options if o not in self.used] or list(options)
        x = self.rng.choice(free)
        self.used.add(x)
        return x

    def sessions(self, k: int, lo: float = 0.0, hi: float = 1.0) -> list[int]:
        n = len(self.dates)
        pool = list(range(int(lo * (n - 1)), max(int(lo * (n - 1)) + k, int(hi * (n - 1)) + 1)))
        pool = [s for s in pool if s < n] or list(range(n))
        return sorted(self.rng.sample(pool, min(k, len(pool))))

    def beat(self, session: int, speaker: str, key: str, *, lead: str | None = None, follow: str | None = None,
             dress: bool = True) -> str:
        """Add a turn carrying `key`, dressed with casual chatter; returns its label."""
        self.n += 1
        label = f"b{self.n}"
        text = key
        if dress:
            r = self.rng.random()
            if r < 0.25:
                text = f"{self.rng.choice(['omg', 'ok so', 'haha', 'ugh', 'guess what,', 'random but', 'oh!'])} {key}"
            elif r < 0.45:
                text = f"{key} {self.rng.choice(['😂', '🙈', '!!', 'lol', '✨', '😭', '...anyway how are you'])}"
            elif r < 0.6:
                text = f"{_fill(self.rng, self.rng.choice(TOPIC_LINES))}. {self.rng.choice(['oh and', 'also', 'other news:'])} {key}"
        if lead is None and self.rng.random() < 0.35:
            lead = self.rng.choice(LEADS)
        if follow is None and self.rng.random() < 0.6:
            follow = self.rng.choice(REACTIONS)
        self.beats.append(Beat(label, session, speaker, text, key, lead, follow))
        return label

    def ask(self, kind: str, text: str, labels: list[str], answer: str) -> None:
        self.questions.append(_QSpec(kind, text, labels, answer))

    def wording(self, kind: str, paraphrases: list[str], naturals: list[str]) -> str:
        """A question the way this category is usually asked: paraphrased, or sharing a word with the evidence."""
        if naturals and self.rng.random() < NATURAL[kind]:
            return self.rng.choice(naturals)
        return self.rng.choice(paraphrases)

    # storylines ---------------------------------------------------------------------------------
    def pet(self, who: str, kind: str) -> None:
        rng = self.rng
        if (who, "pet") not in self.persona:
            self.persona[(who, "pet")] = self._plant_pet(who)
        intro, species, name, q_words, asked = self.persona[(who, "pet")]
        if kind == "adversarial-distractor" and (self.other(who), "pet") not in self.persona:  # the other speaker has a pet too
            self.persona[(self.other(who), "pet")] = self._plant_pet(self.other(who))
        if kind == "single-hop" and "species" not in asked:
            asked.add("species")
            q = rng.choice(["What pet does {a} have?", "What kind of animal lives with {a}?", "What animal did {a} take in?",
                            "What type of pet does {a} own?"])
            self.ask(kind, q.format(a=who), [intro], species)
        elif "name" not in asked:
            asked.add("name")
            q = rng.choice(["What is the name of {a}'s {w}?", "What did {a} call the {w}?", "What's {a}'s {w} called?"])
            self.ask(kind, q.format(a=who, w=rng.choice(q_words)), [intro], name)
        elif kind == "adversarial-distractor":
            self.adversarial(who, kind)
        else:
            self.fact(who, kind)

    def _plant_pet(self, who: str) -> tuple:
        rng = self.rng
        species = self.pick(sorted(PETS))
        looks, q_words, names = PETS[species]
        name = self.pick(names)
        s_intro, *s_later = self.sessions(3, 0.0, 0.8)
        key = rng.choice([
            f"we finally did it, adopted {rng.choice(looks)} from the shelter, named {name} and already owns the sofa",
            f"meet {name}!! {rng.choice(looks)} we picked up on {rng.choice(WEEKDAYS)}, cutest thing ever",
            f"so my housemate's friend couldn't keep {rng.choice(looks)} and now {name} lives with me, oops",
        ])
        intro = self.beat(s_intro, who, key)
        for s in s_later:
            self.beat(s, who, rng.choice(PET_LATER).format(pet=name), dress=False)
        return intro, species, name, q_words, set()

    def job(self, who: str, kind: str) -> None:
        rng = self.rng
        if (who, "job") in self.persona:
            return self.fact(who, kind)
        self.persona[(who, "job")] = ()
        occupation = self.pick(sorted(JOBS))
        lines, answer = JOBS[occupation]
        text, naturals = _split(rng.choice(lines))
        label = self.beat(self.sessions(1)[0], who, text)
        self.ask(kind, self.wording(kind, JOB_QUESTIONS, naturals).format(a=who), [label], answer)

    def fact(self, who: str, kind: str) -> None:
        rng = self.rng
        free = [f for f in sorted(FACTS) if (who, f) not in self.persona] or sorted(FACTS)
        topic = rng.choice(free)
        self.persona[(who, topic)] = ()
        lines, qs, values = FACTS[topic]
        value = self.pick(values)
        text, naturals = _split(rng.choice(lines))
        label = self.beat(self.sessions(1)[0], who, text.format(x=value))
        self.ask(kind, self.wording(kind, qs, naturals).format(a=who), [label], value)

    def relative(self, who: str, kind: str) -> None:
        """A relative named once, then only 'she'/'he': coreference across sessions."""
        rng = self.rng
        rel = rng.choice(sorted(RELATIONS))
        gender, say, ask_words = RELATIONS[rel]
        name = self.pick(KIN_WOMEN if gender == "f" else KIN_MEN)
        subj, obj, poss = PRON[gender]
        city = self.pick(CITIES)
        place, place_q = rng.choice(WORKPLACES)
        s1, s2 = self.sessions(2, 0.0, 0.9)
        intro = self.beat(s1, who, rng.choice([
            f"{rng.choice(say)} {name} is moving to {city} next month, I'm gonna miss {obj} so much",
            f"{rng.choice(say)} {name} just told us {subj}'s relocating to {city} for good 😭",
        ]))
        later = self.beat(s2, who, rng.choice([
            f"{subj} loves it there! {subj} already found a job at {place}",
            f"{subj}'s doing great, started working at {place} last week, I'm so proud of {obj}",
        ]), lead=f"how's {name} settling in?")
        if kind == "multi-hop":
            q = self.wording(kind, ["Where does {a}'s {r} work now, and in which city?",
                                    "In which city and at what kind of place is {a}'s {r} employed?"],
                             ["Where did {a}'s {r} move, and where did {s} find a job?"])
            self.ask(kind, q.format(a=who, r=rng.choice(ask_words), s=subj), [intro, later], f"{place} in {city}")
        else:
            q = self.wording(kind, ["Where is {n} employed after relocating?", "What kind of place hired {n}?"],
                             ["Where did {n} find a job?", "Where did {n} start working?"])
            self.ask(kind, q.format(n=name), [later], place)

    def event(self, who: str, kind: str) -> None:
        rng = self.rng
        ev = self.pick(sorted(EVENTS))
        lines, q_when, activity = EVENTS[ev]
        s = self.sessions(1)[0]
        phrase, when, answer = _relative(rng, self.dates[s].date())
        text, naturals = _split(rng.choice(lines))
        label = self.beat(s, who, text.format(rel=phrase))
        if kind == "temporal" and rng.random() < 0.35 and "week of" not in answer and "weekend" not in answer and phrase != "last month":
            q = rng.choice(["What did {a} do on {d}?", "What did {a} get up to on {d}?"])
            self.ask(kind, q.format(a=who, d=_fmt(when)), [label], activity)
        else:
            self.ask(kind, self.wording(kind, q_when, naturals).format(a=who), [label], answer)
        if rng.random() < 0.5:  # the same person, the same kind of thing, another time (a distractor)
            s2 = min(len(self.dates) - 1, s + rng.randint(2, 6))
            self.beat(s2, who, rng.choice([f"might do that again soon, the last time I {activity} was so much fun",
                                           f"someone at work asked about the time I {activity}, told them all about it"]))

    def hobbies(self, who: str, kind: str) -> None:
        rng = self.rng
        group = self.pick(sorted(HOBBY_GROUPS))
        q_words, naturals, items = HOBBY_GROUPS[group]
        k = rng.choice([2, 3, 3])
        chosen = rng.sample(items, k)
        cities = [self.pick(CITIES) for _ in range(3)]
        labels, answers = [], []
        for s, (line, ans) in zip(self.sessions(k, 0.0, 1.0), chosen, strict=True):
            fmt = {"city1": cities[0], "city2": cities[1], "city3": cities[2]}
            labels.append(self.beat(s, who, line.format(**fmt)))
            answers.append(ans.format(**fmt))
        self.ask(kind, self.wording(kind, q_words, naturals).format(a=who), labels, ", ".join(answers))

    def inference(self, who: str, kind: str) -> None:
        rng = self.rng
        qs, lines, answer = INFERENCES[int(self.pick([str(i) for i in range(len(INFERENCES))]))]
        k = rng.choice([1, 2])
        chosen = [_split(line) for line in rng.sample(lines, k)]
        labels = [self.beat(s, who, text) for s, (text, _) in zip(self.sessions(k), chosen, strict=True)]
        self.ask(kind, self.wording(kind, qs, [q for _, nat in chosen for q in nat]).format(a=who), labels, answer)

    def adversarial(self, who: str, kind: str) -> None:
        """The same kind of fact for both speakers, different values; ask about one of them."""
        rng = self.rng
        topic = self.pick(sorted(ADVERSARIAL))
        qs, lines, values = ADVERSARIAL[topic]
        mine, theirs = rng.sample(values, 2)
        s_mine, s_theirs = rng.sample(self.sessions(2), 2)
        text, naturals = _split(rng.choice(lines))
        label = self.beat(s_mine, who, text.format(x=mine))
        self.beat(s_theirs, self.other(who), _split(rng.choice(lines))[0].format(x=theirs))
        self.ask(kind, self.wording(kind, qs, naturals).format(a=who), [label], mine)


# What each category draws from (storyline, kind); each conversation asks a mix of all five.
PLAN = {
    "single-hop": ["pet", "job", "relative", "fact", "fact"],
    "multi-hop": ["relative", "hobbies", "hobbies"],
    "temporal": ["event"],
    "open-domain": ["inference"],
    "adversarial-distractor": ["adversarial", "pet"],
}


def generate(seed: int, n_turns: int = 500, conv_id: str = "conv-0", n_questions: int = 18) -> Conversation:
    rng = random.Random(f"vicw-memory-bench:{seed}:{conv_id}")
    women, men = rng.sample(WOMEN, 2), rng.sample(MEN, 2)
    pair = rng.choice([(women[0], "f", women[1], "f"), (women[0], "f", men[0], "m"), (men[0], "m", men[1], "m"), (men[1], "m", women[1], "f")])
    speakers, genders = (pair[0], pair[2]), (pair[1], pair[3])
    n_sessions = max(4, round(n_turns / rng.uniform(19, 26)))
    start = datetime(2023, rng.randint(1, 9), rng.randint(1, 28), rng.randint(8, 21), rng.randint(0, 59))
    dates = [start]
    for _ in range(n_sessions - 1):
        nxt = dates[-1] + timedelta(days=rng.randint(2, 18))
        dates.append(nxt.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59)))

    b = _Builder(rng, speakers, genders, dates)
    shares = {"single-hop": 0.3, "multi-hop": 0.2, "temporal": 0.22, "open-domain": 0.12, "adversarial-distractor": 0.16}
    counts = {k: max(1, round(v * n_questions)) for k, v in shares.items()}
    for kind in KINDS:
        for i in range(counts[kind]):
            who = speakers[(i + KINDS.index(kind)) % 2]
            story = rng.choice(PLAN[kind])
            getattr(b, story)(who, kind)

    # every speaker also has a pet or a job mentioned without a question (more distractors)
    for who in speakers:
        if rng.random() < 0.6 and (who, "pet") not in b.persona:
            b.persona[(who, "pet")] = b._plant_pet(who)  # noqa: SLF001 - the builder's own helper

    # lay out sessions: greetings, beats in order with small talk between, goodbye
    per_session = [b_ for b_ in range(n_sessions)]
    beats_by_session: dict[int, list[Beat]] = {s: [] for s in per_session}
    for beat in b.beats:
        beats_by_session[beat.session].append(beat)
    turns: list[Turn] = []
    where: dict[str, int] = {}
    budget = n_turns
    for s in range(n_sessions):
        remaining_sessions = n_sessions - s
        length = max(6, round((budget - len(turns)) / remaining_sessions * rng.uniform(0.7, 1.3)))
        if s == n_sessions - 1:
            length = max(6, n_turns - len(turns))
        opener = rng.choice(speakers)
        ts = dates[s]
        script: list[tuple[str, str, str | None]] = [  # (speaker, text, label)
            (opener, rng.choice(GREETINGS).format(o=speakers[1] if opener == speakers[0] else speakers[0]), None),
            (b.other(opener), rng.choice(GREET_REPLIES), None),
        ]
        blocks: list[list[tuple[str, str, str | None]]] = []
        for beat in beats_by_session[s]:
            block = []
            if beat.lead:
                block.append((b.other(beat.speaker), beat.lead, None))
            block.append((beat.speaker, beat.text, beat.label))
            if beat.follow:
                block.append((b.other(beat.speaker), beat.follow, None))
            blocks.append(block)
        fixed = 4 + sum(len(x) for x in blocks)
        filler_n = max(len(blocks) + 1, length - fixed)
        slots = sorted(rng.sample(range(filler_n + len(blocks)), len(blocks)))
        last = script[-1][0]
        bi = 0
        for pos in range(filler_n + len(blocks)):
            if bi < len(blocks) and pos == slots[bi]:
                script.extend(blocks[bi])
                last = blocks[bi][-1][0]
                bi += 1
                continue
            speaker = b.other(last) if rng.random() < 0.85 else last
            script.append((speaker, _smalltalk(rng, b.other(speaker)), None))
            last = speaker
        closer = rng.choice(speakers)
        script.append((closer, rng.choice(GOODBYES), None))
        script.append((b.other(closer), rng.choice(["bye!", "talk soon x", "night!", "👋", "ttyl", "later!"]), None))
        for speaker, text, label in script:
            idx = len(turns)
            key = None
            if label is not None:
                where[label] = idx
                key = next(x.key for x in beats_by_session[s] if x.label == label)
            turns.append(Turn(idx, speaker, text, ts.replace(microsecond=0), s, key))
            ts += timedelta(seconds=rng.randint(15, 240))

    questions = [Question(f"{conv_id}-q{i}", q.kind, q.text, [where[x] for x in q.labels], q.answer)
                 for i, q in enumerate(b.questions)]
    return Conversation(conv_id, speakers, turns, questions)


def dataset(seed: int = 7, quick: bool = False) -> list[Conversation]:
    """The benchmark's conversations: 10 x ~500 turns (quick: 2 x ~160 turns, fewer questions)."""
    if quick:
        return [generate(seed + i, 160, f"conv-{i}", n_questions=10) for i in range(2)]
    return [generate(seed + i, 500, f"conv-{i}", n_questions=18) for i in range(10)]


def lexical_overlap(question: str, evidence: str) -> float:
    """Share of the question's content words found in the evidence (a measure of how hard keyword search has it)."""
    stop = {"what", "when", "where", "which", "who", "does", "did", "is", "the", "a", "an", "of", "to", "in", "on", "and",
            "has", "have", "for", "do", "be", "would", "how", "with", "s", "at", "by", "could", "might", "likely"}
    words = [w for w in re.findall(r"\w+", question.lower()) if w not in stop]
    ev = set(re.findall(r"\w+", evidence.lower()))
    return sum(w in ev for w in words) / len(words) if words else 0.0
