"""Graph function: SQS batch of offload jobs -> entities and state items in the knowledge graph."""

from vicw import bootstrap
from vicw.cold_path import lambda_entry

worker, handler = lambda_entry("graph", bootstrap.graph_worker)
