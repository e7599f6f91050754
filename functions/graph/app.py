"""Graph function: SQS batch of offload jobs -> entities and state items in the knowledge graph."""

from vicw.cold_path import build_graph_worker, lambda_entry

worker, handler = lambda_entry("graph", build_graph_worker)
