#!/bin/sh
# Delete one environment's objects (Secrets created by `nself k8s.apply` stay).
set -eu
env="${1:-local}"
here="$(cd "$(dirname "$0")/.." && pwd)"
overlay="$here/overlays/$env"
[ -d "$overlay" ] || { echo "no overlay for environment '$env' in $here/overlays" >&2; exit 2; }
kubectl delete -k "$overlay" --ignore-not-found
