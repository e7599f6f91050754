#!/usr/bin/env bash
# Remove what the functions never load, so function + layers stay under Lambda's 250 MB
# (unzipped) limit. Every removal here is something no import path of ours reaches.
set -euo pipefail
site="$1"
cd "$site"

# Provided by the Lambda Python runtime (and pulled in by powertools / aws-xray-sdk).
rm -rf boto3 boto3-* botocore botocore-* s3transfer s3transfer-* jmespath jmespath-*
# huggingface_hub's optional Rust transfer backend: we never download anything.
rm -rf hf_xet hf_xet-*
# onnxruntime's model-conversion and quantisation tooling (inference needs only capi/).
rm -rf onnxruntime/tools onnxruntime/transformers onnxruntime/quantization onnxruntime/datasets
# Test suites, type stubs, caches.
find . -depth -type d \( -name tests -o -name testing_data -o -name __pycache__ \) -path './numpy/*' -exec rm -rf {} +
find . -depth -type d -name __pycache__ -exec rm -rf {} +
find . -depth -type d -name tests -path './regex/*' -exec rm -rf {} +
find . -name '*.pyi' -delete
find . -name '*.pyc' -delete
# C headers and static libraries used only to compile against numpy.
rm -rf numpy/_core/include numpy/_core/lib numpy/f2py
# Pillow is imported by fastembed (image models) but never opens an image here: drop the codecs
# it loads only on demand and reports as unsupported when absent (AVIF, and FreeType/HarfBuzz for
# ImageFont). Frees ~8 MB, which the MCP SDK (mcp + cryptography, ~21 MB) needed.
rm -f PIL/_avif.*.so PIL/_imagingft.*.so pillow.libs/libavif-*.so* pillow.libs/libfreetype-*.so* \
    pillow.libs/libharfbuzz-*.so* pillow.libs/libbrotli*-*.so*
