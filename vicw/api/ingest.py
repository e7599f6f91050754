"""POST /ingest: a document into long-term memory (through the cold path, like shed turns)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from vicw import bootstrap
from vicw.api.deps import Tenant
from vicw.api.errors import ApiError
from vicw.api.json_body import CheckedJSONRoute
from vicw.api.schemas import SessionId
from vicw.ingest import DocumentTooLarge, IngestUnavailable, ingest_document

router = APIRouter(tags=["memory"], route_class=CheckedJSONRoute)


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: str = Field(min_length=1)
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    session_id: SessionId | None = None

    @field_validator("document")
    @classmethod
    def _non_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty or whitespace")
        return value


class IngestResponse(BaseModel):
    job_id: str
    parts: int
    tokens: int
    jobs: list[str]


@router.post("/ingest", status_code=202, response_model=IngestResponse)
def ingest(body: IngestRequest, tenant: Tenant) -> IngestResponse:
    try:
        result = ingest_document(
            tenant, body.document, body.metadata, body.session_id,
            counter=bootstrap.token_counter(), publisher=bootstrap.publisher(),
            redis=bootstrap.window_store().r, max_bytes=bootstrap.settings().max_ingest_bytes,
        )
    except DocumentTooLarge as exc:
        raise ApiError(413, str(exc), "document_too_large") from None
    except IngestUnavailable as exc:
        raise ApiError(503, str(exc), "service_unavailable", {"Retry-After": "5"}) from None
    return IngestResponse(job_id=result.job_id, parts=result.parts, tokens=result.tokens, jobs=result.jobs)
