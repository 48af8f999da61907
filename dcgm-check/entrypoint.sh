#!/bin/sh
# ECS GPU Recovery: DCGM check wrapper (see docs/diagnosis.md).
# Runs `dcgmi diag -r $DCGM_DIAG_LEVEL -j`, collects the driver's XID lines from the kernel log when it can and
# the GPU map from nvidia-smi, prints ONE line `GPU_RECOVERY_RESULT <json>` and exits with dcgmi's exit code:
#   {"version":1,"dcgmiExitCode":N,"diagLevel":L,"dcgmi":<dcgmi JSON or null>,
#    "xids":[{"xid","gpuIndex","pciBusId","line"}],"gpus":[{"index","uuid","pciBusId"}]}
# POSIX sh + awk only: NVIDIA's DCGM image has no Python. XID_LOG_FILE names a host log mounted into the
# container (e.g. /var/log/messages) for when dmesg is not permitted.
DCGM_DIAG_LEVEL="${DCGM_DIAG_LEVEL:-2}"
LEVEL="$DCGM_DIAG_LEVEL"
WORK="$(mktemp -d 2>/dev/null || echo /tmp/gpu-recovery-check)"
mkdir -p "$WORK"
echo "dcgm-check: level $LEVEL; starting nv-hostengine"
nv-hostengine >/dev/null 2>&1 || echo "dcgm-check: nv-hostengine did not start (one may already be running)"
nvidia-smi --query-gpu=index,uuid,pci.bus_id --format=csv,noheader >"$WORK/gpus" 2>/dev/null ||
  echo "dcgm-check: nvidia-smi could not list the GPUs"
echo "dcgm-check: running dcgmi diag -r $LEVEL -j"
dcgmi diag -r "$DCGM_DIAG_LEVEL" -j >"$WORK/dcgmi" 2>"$WORK/dcgmi.err"
CODE=$?
echo "dcgm-check: dcgmi exited $CODE"
if dmesg >"$WORK/kernel" 2>/dev/null; then :; elif [ -n "${XID_LOG_FILE:-}" ] && [ -r "$XID_LOG_FILE" ]; then
  cat "$XID_LOG_FILE" >"$WORK/kernel"
else
  : >"$WORK/kernel"
  echo "dcgm-check: kernel log not readable (dmesg not permitted, no XID_LOG_FILE): no XIDs collected"
fi
grep 'NVRM: Xid' "$WORK/kernel" >"$WORK/xids" 2>/dev/null || : >"$WORK/xids"
cat "$WORK/xids"
awk -v code="$CODE" -v level="$LEVEL" -v gpus="$WORK/gpus" -v xids="$WORK/xids" -v dcgmi="$WORK/dcgmi" '
function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/[\001-\037]/, " ", s); return s }
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
function buskey(s,   n, p) { s = tolower(s); sub(/^pci:/, "", s); sub(/\..*$/, "", s); n = split(s, p, ":");
  return p[n - 1] ":" p[n] }
BEGIN {
  ng = 0; gl = ""
  while ((getline line < gpus) > 0) {
    n = split(line, f, ","); if (n < 3) continue
    idx = trim(f[1]); uuid = trim(f[2]); bus = trim(f[3]); byBus[buskey(bus)] = idx
    gl = gl (ng++ ? "," : "") "{\"index\":" idx ",\"uuid\":\"" esc(uuid) "\",\"pciBusId\":\"" esc(bus) "\"}"
  }
  nx = 0; xl = ""
  while ((getline line < xids) > 0) {
    if (!match(line, /NVRM: Xid \([^)]*\): [0-9]+/)) continue
    m = substr(line, RSTART, RLENGTH); pci = m; sub(/^NVRM: Xid \(/, "", pci); sub(/\).*$/, "", pci)
    code_ = m; sub(/^.*\): /, "", code_)
    key = buskey(pci); gi = (key in byBus) ? byBus[key] : "null"
    xl = xl (nx++ ? "," : "") "{\"xid\":" code_ ",\"gpuIndex\":" gi ",\"pciBusId\":\"" esc(pci) "\",\"line\":\"" esc(trim(line)) "\"}"
  }
  body = ""
  while ((getline line < dcgmi) > 0) body = body " " line
  body = trim(body); if (body == "") body = "null"
  printf "GPU_RECOVERY_RESULT {\"version\":1,\"dcgmiExitCode\":%d,\"diagLevel\":%d,\"dcgmi\":%s,\"xids\":[%s],\"gpus\":[%s]}\n", code, level, body, xl, gl
}'
rm -rf "$WORK"
exit "$CODE"
