"""Chat Lambda: the FastAPI app behind API Gateway (HTTP API v2) through Mangum.

Dependencies are built once per cold start (vicw.bootstrap caches them); the handler only adds
Powertools context (correlation id = API Gateway request id), metrics flushing and tracing.
"""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from vicw import bootstrap
from vicw.api.app import create_app
from vicw.observability import logger, metrics, tracer

bootstrap.warm()
app = create_app()
_asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return _asgi(event, context)
