#!/usr/bin/env bash
# Deploy template.yaml into LocalStack (docker-compose.localstack.yml must be up).
# Needs Docker, a paid LocalStack plan's auth token (HTTP API and layers are not in the free tier),
# and `pip install aws-sam-cli aws-sam-cli-local awscli-local` (samlocal / awslocal wrap sam / aws
# with the LocalStack endpoint). Not run in CI: see the top of docker-compose.localstack.yml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

STACK="${STACK:-vicw-local}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

for tool in samlocal awslocal; do
    command -v "$tool" >/dev/null || { echo "missing $tool: pip install aws-sam-cli-local awscli-local" >&2; exit 1; }
done

# Containers reach each other by compose service name on the vicw-local network.
awslocal ssm put-parameter --overwrite --name /vicw/dev/redis-url --type SecureString --value redis://redis:6379/0
awslocal ssm put-parameter --overwrite --name /vicw/dev/api-keys --type SecureString --value "dev-key-change-me:dev-tenant"
NEO4J_SECRET_ARN=$(awslocal secretsmanager create-secret --name vicw/local/neo4j \
    --secret-string local-dev-only --query ARN --output text 2>/dev/null ||
    awslocal secretsmanager describe-secret --secret-id vicw/local/neo4j --query ARN --output text)

ALARM_TOPIC_ARN=$(awslocal sns create-topic --name vicw-local-alarms --query TopicArn --output text)

samlocal build
samlocal deploy --stack-name "$STACK" --resolve-s3 --no-confirm-changeset --no-fail-on-empty-changeset \
    --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --parameter-overrides Stage=dev RedisUrlSecret=/vicw/dev/redis-url ApiKeysParameterName=/vicw/dev/api-keys \
        QdrantUrl=http://qdrant:6333 Neo4jUri=bolt://neo4j:7687 Neo4jPasswordSecretArn="$NEO4J_SECRET_ARN" \
        LlmProvider=none AlarmTopicArn="$ALARM_TOPIC_ARN"

awslocal cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[].[OutputKey,OutputValue]" --output table
