"""Offload function: SQS batch of offload jobs -> S3 archive + embeddings in Qdrant."""

from vicw import bootstrap
from vicw.cold_path import lambda_entry

worker, handler = lambda_entry("offload", bootstrap.offload_worker)
