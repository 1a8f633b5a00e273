#!/usr/bin/env bash
# Renders every overlay under k8s/ with `kubectl kustomize` and validates the result — and
# every manifest outside the kustomizations, and the sandbox pod the server generates —
# against the Kubernetes 1.33 schemas with kubernetes-validate --strict (unknown fields are
# errors). No cluster is involved. Run by scripts/test.sh; needs scripts/setup.sh first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kubectl=$(kubectl_bin)
validate=("$ROOT/k8s/.venv/bin/kubernetes-validate" --strict --quiet -k 1.33.0)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

say "k8s: rendering and validating the manifests ($("$kubectl" version --client 2>/dev/null | head -1))"
for dir in "$ROOT"/k8s/base "$ROOT"/k8s/overlays/*/; do
  name=$(basename "$dir")
  "$kubectl" kustomize "$dir" >"$out/$name.yaml" 2>"$out/$name.err" \
    || { cat "$out/$name.err" >&2; die "kubectl kustomize ${dir#"$ROOT"/} failed"; }
  "${validate[@]}" "$out/$name.yaml"
  echo "  k8s/${dir#"$ROOT"/k8s/}: $(grep -c '^kind:' "$out/$name.yaml") objects valid"
done
for file in "$ROOT"/k8s/base/secret.example.yaml "$ROOT"/k8s/optional/*.yaml; do
  "${validate[@]}" "$file"
  echo "  ${file#"$ROOT"/}: valid"
done

# The pod the kube runtime creates, with the production overlay's settings. It has only a
# generateName; the validator wants a name to report on, so one is added.
server="$CARGO_TARGET_DIR/debug/codepod"
[[ -x "$server" ]] || cargo build -p server --bin codepod --quiet
CODEPOD_KUBE_NODE_SELECTOR=codepod.dev/sandboxes=true \
CODEPOD_KUBE_TOLERATIONS='[{"key":"codepod.dev/sandboxes","operator":"Exists","effect":"NoSchedule"}]' \
CODEPOD_KUBE_RUNTIME_CLASS=gvisor \
  "$server" --print-sandbox-pod >"$out/pod.json"
/usr/bin/python3 - "$out/pod.json" <<'PY'
import json, sys
path = sys.argv[1]
pod = json.load(open(path))
pod["metadata"]["name"] = pod["metadata"]["generateName"] + "example"
json.dump(pod, open(path, "w"))
PY
"${validate[@]}" "$out/pod.json"
echo "  the generated sandbox pod: valid"
