"""The body-size cap: refused before parsing, per-path caps for document uploads."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from vicw.api.limits import BodySizeLimit


def client() -> TestClient:
    app = FastAPI()

    @app.post("/{path:path}")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    app.add_middleware(BodySizeLimit, max_bytes=1000, per_path={"/ingest": 5000})
    return TestClient(app)


def test_default_cap_and_message():
    c = client()
    assert c.post("/chat", content=b"x" * 1000).json() == {"bytes": 1000}
    r = c.post("/chat", content=b"x" * 1001)
    assert r.status_code == 413 and "MAX_BODY_BYTES" in r.json()["detail"]


def test_ingest_has_its_own_larger_cap():
    c = client()
    assert c.post("/ingest", content=b"x" * 4000).json() == {"bytes": 4000}
    r = c.post("/ingest", content=b"x" * 5001)
    assert r.status_code == 413 and "MAX_INGEST_BYTES" in r.json()["detail"]


def test_streamed_body_without_length_is_cut_off():
    c = client()
    r = c.post("/chat", content=(b"x" * 500 for _ in range(3)))  # chunked: no Content-Length
    assert r.status_code == 413


class Body(BaseModel):
    message: str


def test_chunked_body_over_the_cap_is_413_for_parsed_bodies_too():
    app = FastAPI()

    @app.post("/chat")
    def chat(body: Body) -> dict:
        return {"chars": len(body.message)}

    app.add_middleware(BodySizeLimit, max_bytes=1000)
    c = TestClient(app)
    chunks = [b'{"message": "', b"x" * 600, b"x" * 600, b'"}']
    r = c.post("/chat", content=iter(chunks), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "MAX_BODY_BYTES" in r.json()["detail"]
    r = c.post("/chat", content=iter([b'{"message": "', b"x" * 100, b'"}']), headers={"Content-Type": "application/json"})
    assert r.json() == {"chars": 100}
