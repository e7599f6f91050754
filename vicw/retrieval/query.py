"""What a query asks for: its words for BM25 and the graph, exact tokens, and any time it names."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves ever tell remember said say says told mention mentioned again please know
    recall anything something thing things also did does""".split()
)

_DATE_ISO = r"\d{4}-\d{2}-\d{2}"
_NUMBER = r"\d+(?:[.,:/]\d+)*"
_WORD = r"[a-z]+(?:'[a-z]+)?"
_TOKEN = re.compile(rf"{_DATE_ISO}|{_NUMBER}|{_WORD}")
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z]{2,}\b")
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})


def _normalise(token: str) -> str:
    if token[0].isdigit() and "," in token:  # 4,250 and 4250 are the same number
        token = token.replace(",", "")
    if token.endswith("'s"):
        token = token[:-2]
    return token


def tokenize(text: str) -> list[str]:
    """BM25 tokens: lower-case words without stop words, numbers and ISO dates kept whole."""
    out = []
    for raw in _TOKEN.findall(text.lower()):
        tok = _normalise(raw)
        if tok and tok not in STOP_WORDS and (len(tok) > 1 or tok.isdigit()):
            out.append(tok)
    return out


@dataclass
class QueryIntent:
    text: str
    tokens: list[str]
    exact: list[str]  # numbers, dates and names that a keyword hit should contain
    asks_when: bool
    time_range: tuple[datetime, datetime] | None = None
    names: list[str] = field(default_factory=list)


def _day(d: datetime) -> datetime:
    return d.replace(hour=0, minute=0, second=0, microsecond=0)


def _range_from_text(text: str, now: datetime) -> tuple[datetime, datetime] | None:
    low = text.lower()
    today = _day(now)
    if m := re.search(_DATE_ISO, low):
        start = datetime.fromisoformat(m.group(0)).replace(tzinfo=now.tzinfo or UTC)
        return start, start + timedelta(days=1)
    if "yesterday" in low:
        return today - timedelta(days=1), today
    if "today" in low:
        return today, today + timedelta(days=1)
    if m := re.search(r"\b(\d+|a|one|two|three)\s+(day|week|month)s?\s+ago\b", low):
        n = {"a": 1, "one": 1, "two": 2, "three": 3}.get(m.group(1)) or int(m.group(1))
        days = {"day": 1, "week": 7, "month": 30}[m.group(2)] * n
        centre = today - timedelta(days=days)
        slack = timedelta(days=max(1, days // 4))
        return centre - slack, centre + slack + timedelta(days=1)
    if m := re.search(r"\blast\s+(week|month|year)\b", low):
        span = {"week": 7, "month": 31, "year": 366}[m.group(1)]
        return today - timedelta(days=2 * span), today  # generous: "last week" is often said loosely
    if m := re.search(r"\bthis\s+(week|month)\b", low):
        return today - timedelta(days=7 if m.group(1) == "week" else 31), today + timedelta(days=1)
    month = None
    for word in re.findall(r"[a-z]+", low):
        if word in _MONTHS and (len(word) > 3 or word in {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}):
            if word == "may" and not re.search(r"\b(in|on|of|during|early|late|mid)\s+may\b", low):
                continue  # "may" is mostly a verb
            month = _MONTHS[word]
            break
    if month is not None:
        year_m = re.search(r"\b(19|20)\d{2}\b", low)
        year = int(year_m.group(0)) if year_m else (now.year if month <= now.month else now.year - 1)
        day_m = re.search(rf"\b{list(calendar.month_name)[month].lower()[:3]}[a-z]*\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b", low) or re.search(
            rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{list(calendar.month_name)[month].lower()[:3]}", low
        )
        tz = now.tzinfo or UTC
        if day_m and 1 <= int(day_m.group(1)) <= calendar.monthrange(year, month)[1]:
            start = datetime(year, month, int(day_m.group(1)), tzinfo=tz)
            return start, start + timedelta(days=1)
        start = datetime(year, month, 1, tzinfo=tz)
        return start, start + timedelta(days=calendar.monthrange(year, month)[1])
    if m := re.search(r"\bin\s+((?:19|20)\d{2})\b", low):
        tz = now.tzinfo or UTC
        return datetime(int(m.group(1)), 1, 1, tzinfo=tz), datetime(int(m.group(1)) + 1, 1, 1, tzinfo=tz)
    return None


def analyse(text: str, now: datetime) -> QueryIntent:
    tokens = tokenize(text)
    names = [w for w in _CAPITALISED.findall(text) if w.lower() not in STOP_WORDS and w.lower() not in _MONTHS]
    exact = [t for t in tokens if t[0].isdigit()] + [n.lower() for n in names]
    asks_when = bool(re.search(r"\b(when|what (day|date|time|year|month)|how long ago|which (day|date|year|month))\b", text.lower()))
    return QueryIntent(text=text, tokens=tokens, exact=list(dict.fromkeys(exact)), asks_when=asks_when,
                       time_range=_checked_range(text, now), names=names)


def _checked_range(text: str, now: datetime) -> tuple[datetime, datetime] | None:
    """The date range a query names, or None when it names none a calendar can hold: "2023-02-30",
    "2023-13-01", "99999999 days ago" are words to search for, not a reason for retrieval to fail."""
    try:
        return _range_from_text(text, now)
    except (ValueError, OverflowError):
        return None
