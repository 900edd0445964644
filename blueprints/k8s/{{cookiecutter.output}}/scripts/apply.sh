#!/bin/sh
# Apply one environment's overlay. Secrets are never applied from files here:
# create them first with `nself k8s.apply --env ENV` (it reads the env files).
set -eu
env="${1:-local}"
here="$(cd "$(dirname "$0")/.." && pwd)"
overlay="$here/overlays/$env"
[ -d "$overlay" ] || { echo "no overlay for environment '$env' in $here/overlays" >&2; exit 2; }
if grep -q "secrets.yaml" "$here/base/kustomization.yaml"; then
  echo "refusing: base/kustomization.yaml lists secrets.yaml (generated with --include-secrets);" >&2
  echo "apply it deliberately with kubectl if that is what you want" >&2
  exit 2
fi
kubectl apply -k "$overlay"
