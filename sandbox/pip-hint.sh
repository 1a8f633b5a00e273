# Codepod: when pip fails, say whether the package index could reach its upstream (pip
# itself says only "no matching distribution"). Sourced by the sandboxes' login shells:
# the local runtime's profile, /etc/profile.d in the sandbox image.
__codepod_index_health() {
  [ -n "$PIP_INDEX_URL" ] || return 0
  python3 - "$PIP_INDEX_URL" >&2 <<'PY'
import sys, urllib.request, urllib.error
base = sys.argv[1].split("/simple")[0]
try:
    urllib.request.urlopen(base + "/codepod/health", timeout=5)
except urllib.error.HTTPError as error:
    why = error.read().decode(errors="replace").strip()
    print("codepod: pip could not use the package index: " + why)
    print("codepod: this sandbox reaches no network but that index, which the server's operator sets (CODEPOD_PACKAGE_INDEX).")
except Exception as error:
    print("codepod: the package index is unreachable from this sandbox (%s)." % error)
PY
}
pip() { command pip "$@"; local status=$?; [ $status -eq 0 ] || __codepod_index_health; return $status; }
pip3() { command pip3 "$@"; local status=$?; [ $status -eq 0 ] || __codepod_index_health; return $status; }
