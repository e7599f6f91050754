"""Offload function: SQS batch of offload jobs -> S3 archive + embeddings in Qdrant."""

from vicw.cold_path import build_offload_worker, lambda_entry

worker, handler = lambda_entry("offload", build_offload_worker)
