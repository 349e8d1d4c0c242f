#!/usr/bin/env bash
# Turns an OpenAPI 3 document (JSON or YAML) into an attributegen
# configuration: one route template per operation, valued by its operationId.
#   scripts/openapi-to-attributegen.sh [--output-attribute NAME] [--base-path /p] [--on-request] api.yaml > attributegen.json
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
exec cargo run -q --manifest-path "$ROOT/Cargo.toml" -p openapi-to-attributegen -- "$@"
