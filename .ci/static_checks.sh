#!/usr/bin/env bash
# Static checks of the deployment: SAM lint, checkov, lint of the expanded CloudFormation, sam build,
# Lambda size limit, and (when a Python 3.12 interpreter exists) importing each built handler
# with nothing but its layers. Needs only PyPI; no Docker, no AWS account.
#
#   bash .ci/static_checks.sh            # all checks
#   SKIP_BUILD=1 bash .ci/static_checks.sh   # lint only
#
# The SAM CLI pins versions that clash with the project's own dependencies, so it lives in its
# own virtualenv (.venv-tools, reused between runs).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="${VICW_TOOLS_VENV:-$ROOT/.venv-tools}"
TOOLS_PY="${TOOLS_PYTHON:-python3.11}"
command -v "$TOOLS_PY" >/dev/null 2>&1 || TOOLS_PY=python3
REQS="aws-sam-cli==1.170.0 cfn-lint==1.58.0"
# checkov pins its own dependency tree (it clashes with the SAM CLI's), so it has its own venv.
CHECKOV_VENV="${VICW_CHECKOV_VENV:-$ROOT/.venv-checkov}"
CHECKOV_REQS="checkov==3.3.30"
REGION=us-east-1
BUILD_DIR="$ROOT/.aws-sam/build"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$REGION AWS_REGION=$REGION

declare -a RESULTS=()
FAILED=0
START=$SECONDS

run_check() {  # run_check "name" command...
    local name="$1"; shift
    local t0=$SECONDS log="$WORK/$(echo "$name" | tr -c 'a-zA-Z0-9' '_').log"
    if "$@" >"$log" 2>&1; then
        RESULTS+=("PASS  $name ($((SECONDS - t0)) s)")
        echo "PASS  $name"
    else
        RESULTS+=("FAIL  $name ($((SECONDS - t0)) s)")
        FAILED=1
        echo "FAIL  $name — output:"
        sed 's/^/    /' "$log" | tail -40
    fi
}

tools_venv() {
    if [[ -f "$TOOLS/.installed" ]] && [[ "$(cat "$TOOLS/.installed")" == "$REQS" ]]; then
        return 0
    fi
    rm -rf "$TOOLS"
    "$TOOLS_PY" -m venv "$TOOLS" &&
        "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check $REQS &&
        echo "$REQS" >"$TOOLS/.installed"
}

checkov_venv() {
    if [[ -f "$CHECKOV_VENV/.installed" ]] && [[ "$(cat "$CHECKOV_VENV/.installed")" == "$CHECKOV_REQS" ]]; then
        return 0
    fi
    rm -rf "$CHECKOV_VENV"
    "$TOOLS_PY" -m venv "$CHECKOV_VENV" &&
        "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check $CHECKOV_REQS &&
        echo "$CHECKOV_REQS" >"$CHECKOV_VENV/.installed"
}

# Every failed check must be fixed, or skipped in template.yaml (resource Metadata: checkov: skip:)
# with a written reason. --skip-download: no policy metadata from the network (runs offline).
checkov_scan() {
    "$CHECKOV_VENV/bin/checkov" -f template.yaml --framework cloudformation --compact --quiet --skip-download
}

sam_validate() { "$TOOLS/bin/sam" validate --lint --region "$REGION" --template-file template.yaml; }

translated_lint() {
    "$TOOLS/bin/python" infra/sam_translate.py template.yaml "$WORK/translated.json" "$REGION" &&
        # W2001 (unused parameter) is expected here: the offline transform inlines parameter
        # defaults into the HTTP API body. tests/infrastructure checks parameter use on the
        # SAM template instead.
        "$TOOLS/bin/cfn-lint" --regions "$REGION" --ignore-checks W2001 -- "$WORK/translated.json"
}

sam_build() {
    # The layer Makefile runs pip from $PYTHON; the tools interpreter always has pip.
    PYTHON="$TOOLS/bin/python" "$TOOLS/bin/sam" build --template-file template.yaml --build-dir "$BUILD_DIR"
}

sizes() { "$TOOLS/bin/python" infra/lambda_sizes.py "$BUILD_DIR" | tee "$WORK/sizes.txt"; }

find_py312() {
    for cand in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
        # A pyenv shim exists even when it cannot run: ask the interpreter itself.
        if "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
            "$cand" -c 'import sys; print(sys.executable)'; return 0
        fi
    done
    return 1
}

handler_imports() {
    local py="$1" boto="$TOOLS/lambda-runtime-boto3"
    # The Lambda runtime provides boto3; stand in for it with the same packages.
    if [[ ! -d "$boto/boto3" ]]; then
        "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
            --no-warn-conflicts --target "$boto" boto3 || return 1
    fi
    local layers
    for fn in ChatFunction OffloadFunction GraphFunction MaintenanceFunction; do
        # Each function with only ITS layers (graph and maintenance have no embedding stack).
        layers="$("$TOOLS/bin/python" infra/lambda_sizes.py "$BUILD_DIR" --pythonpath "$fn"):$boto" || return 1
        # PYTHONDONTWRITEBYTECODE: the build folder is what `sam deploy` uploads; never add to it.
        (cd "$BUILD_DIR/$fn" && env -i PATH=/usr/bin:/bin HOME="$WORK" PYTHONDONTWRITEBYTECODE=1 AWS_REGION=$REGION \
            AWS_DEFAULT_REGION=$REGION AWS_ACCESS_KEY_ID=none AWS_SECRET_ACCESS_KEY=none \
            AWS_ENDPOINT_URL=http://127.0.0.1:9 REDIS_URL=redis://127.0.0.1:9/0 GRAPH_BACKEND=none \
            HF_HUB_OFFLINE=1 TMPDIR="$WORK" PYTHONPATH="$layers" \
            timeout 120 "$py" -c "
import time; t0 = time.perf_counter()
import app
assert callable(app.handler)
if '$fn' == 'ChatFunction':
    import vicw.api.mcp_server  # the MCP SDK is imported on the first /mcp request: it must be there
print('$fn: handler imported with its layers in %.0f ms (no .pyc, dependencies built)' % ((time.perf_counter() - t0) * 1000))") || return 1
    done
    # The embedding model must load from the layers alone (no download) and give unit vectors.
    layers="$("$TOOLS/bin/python" infra/lambda_sizes.py "$BUILD_DIR" --pythonpath OffloadFunction)" || return 1
    env -i PATH=/usr/bin:/bin HOME="$WORK" PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 TMPDIR="$WORK" PYTHONPATH="$layers" \
        timeout 120 "$py" -c "
from vicw.embeddings import Embedder
v = Embedder().embed_one('layer smoke test')
assert len(v) == 384 and abs(sum(x * x for x in v) - 1) < 1e-3, len(v)
print('embedding from the layer: dim', len(v))"
}

# The two tool venvs are independent: install checkov's in the background meanwhile (a clean
# clone spends most of its static-check time in these installs).
checkov_venv >"$WORK/checkov_venv.log" 2>&1 &
CHECKOV_INSTALL=$!
run_check "tools venv ($REQS)" tools_venv
if [[ $FAILED -ne 0 ]]; then echo "cannot continue without the tools venv"; exit 1; fi
run_check "sam validate --lint" sam_validate
checkov_installed() { wait "$CHECKOV_INSTALL" || { cat "$WORK/checkov_venv.log"; return 1; }; }
run_check "checkov venv ($CHECKOV_REQS)" checkov_installed
run_check "checkov on template.yaml (no unskipped failure)" checkov_scan
run_check "cfn-lint on the SAM-expanded CloudFormation" translated_lint
if [[ -z "${SKIP_BUILD:-}" ]]; then
    run_check "sam build (no container)" sam_build
    if [[ -f "$BUILD_DIR/template.yaml" ]]; then
        run_check "function + layers unzipped < 250 MB" sizes
        if PY312="$(find_py312)"; then
            run_check "handlers import with only their layers (Python 3.12)" handler_imports "$PY312"
        else
            RESULTS+=("SKIP  handler imports (no python3.12 interpreter on this machine)")
        fi
    fi
fi

echo
echo "== static checks ($((SECONDS - START)) s)"
printf '%s\n' "${RESULTS[@]}"
if [[ -f "$WORK/sizes.txt" ]]; then echo "== sizes (unzipped)"; cat "$WORK/sizes.txt"; fi
exit $FAILED
