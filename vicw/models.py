"""Domain models shared by the hot path, the cold path and the API edges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

Role = Literal["system", "user", "assistant", "tool"]
JOB_NAMESPACE = uuid.UUID("6f1c3c5e-3b0a-4d59-9a57-5b9d1c0e7a21")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Timezone-aware: a naive timestamp (as chat exports carry them) means UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None or value.utcoffset() is None else value


# Years a message may carry. Outside them `.timestamp()`, date arithmetic or formatting in another
# zone can fail ("year 0 is out of range"); the edge refuses them with a 422.
MIN_YEAR, MAX_YEAR = 1900, 2999


def checked_utc(value: datetime) -> datetime:
    """`as_utc`, refusing years outside [MIN_YEAR, MAX_YEAR] (edge validation of user input)."""
    value = as_utc(value)
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"timestamp year must be between {MIN_YEAR} and {MAX_YEAR}")
    return value


# Stored and internal timestamps: always aware (old naive records are read as UTC).
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
# Timestamps from users: aware, and within a range every later step can handle.
InputDatetime = Annotated[datetime, AfterValidator(checked_utc)]


class Turn(BaseModel):
    """One message kept in a session's window (or shed from it)."""

    seq: int = Field(ge=0, description="Position in the session, strictly increasing")
    role: Role
    content: str
    name: str | None = None
    timestamp: UtcDatetime
    tokens: int = Field(ge=0)
    pinned: bool = False

    @property
    def turn_id(self) -> str:
        return str(self.seq)

    def rendered(self) -> str:
        return render_content(self.role, self.content, self.name, self.timestamp)


def render_content(role: str, content: str, name: str | None, timestamp: datetime | None) -> str:
    """A message as the model sees it: the speaker (and the date, when known) are part of it."""
    if role == "system" or name is None:
        return content
    if timestamp is not None:
        return f"[{timestamp:%Y-%m-%d %H:%M}] {name}: {content}"
    return f"{name}: {content}"


class WindowState(BaseModel):
    """A session's working window as stored in Redis."""

    tenant: str
    session_id: str
    turns: list[Turn] = Field(default_factory=list)
    next_seq: int = 0
    offloaded_jobs: int = 0
    offloaded_turns: int = 0
    offloaded_tokens: int = 0
    total_turns: int = 0
    total_tokens: int = 0  # everything ever appended: what "send the full history" would cost
    history_count: int = 0  # non-system messages ever recorded (to spot what a client resends)
    history_digests: list[str] = Field(default_factory=list)  # digests of the last few of them
    created_at: UtcDatetime = Field(default_factory=utcnow)
    updated_at: UtcDatetime = Field(default_factory=utcnow)

    @property
    def tokens(self) -> int:
        return sum(t.tokens for t in self.turns)


class OffloadJob(BaseModel):
    """An ordered chunk of turns shed from a window (or a document part), bound for the cold path."""

    job_id: str
    tenant: str
    session_id: str | None
    kind: Literal["conversation", "document"] = "conversation"
    turns: list[Turn]
    token_count: int
    created_at: UtcDatetime = Field(default_factory=utcnow)
    metadata: dict[str, str] = Field(default_factory=dict)

    @staticmethod
    def make_id(tenant: str, session_id: str | None, first: int, last: int, kind: str = "conversation") -> str:
        return str(uuid.uuid5(JOB_NAMESPACE, f"{kind}/{tenant}/{session_id}/{first}-{last}"))

    @property
    def last_seq(self) -> int:
        return self.turns[-1].seq
