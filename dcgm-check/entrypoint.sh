#!/bin/sh
# ECS GPU Recovery: DCGM check wrapper (see docs/diagnosis.md).
# Runs `dcgmi diag -r $DCGM_DIAG_LEVEL -j`, collects the driver's XID lines of the current boot and the GPU map,
# prints ONE line `GPU_RECOVERY_RESULT <json>` and exits with dcgmi's exit code:
#   {"version":2,"dcgmiExitCode":N,"diagLevel":L,"dcgmiOutput":"<dcgmi's stdout, as a JSON string>",
#    "dcgmiTruncated":false,"dcgmiStderr":"...","driverVersion":"...","bootTime":S,"checkTime":S,"xidSource":"...",
#    "xidsDropped":N,"xids":[{"xid","gpuIndex","pciBusId","line","count"}],"gpus":[{"index","uuid","pciBusId"}]}
# dcgmi's output is escaped into a string whatever it prints (JSON, plain text, a half-written document), so the
# line is always valid JSON. The line stays well under CloudWatch Logs' 256 KB event limit: dcgmi's output is cut
# at DCGMI_MAX_BYTES, identical XID messages are counted once, at most XID_MAX_LINES distinct ones are kept.
# POSIX sh + awk only: NVIDIA's DCGM image has no Python.
# Kernel log, first that works: `dmesg` (the current boot's ring buffer; needs kernel.dmesg_restrict=0 or
# CAP_SYSLOG), else XID_LOG_FILE, a host log mounted into the container (e.g. /var/log/messages), of which only
# the lines after its last boot (its last "Linux version" line) count.
DCGM_DIAG_LEVEL="${DCGM_DIAG_LEVEL:-2}"
LEVEL="$DCGM_DIAG_LEVEL"
DCGMI_MAX_BYTES="${DCGMI_MAX_BYTES:-160000}"
XID_MAX_LINES="${XID_MAX_LINES:-64}"
WORK="$(mktemp -d 2>/dev/null || echo /tmp/gpu-recovery-check)"
mkdir -p "$WORK"
echo "dcgm-check: level $LEVEL; starting nv-hostengine"
nv-hostengine >/dev/null 2>&1 || echo "dcgm-check: nv-hostengine did not start (one may already be running)"
nvidia-smi --query-gpu=index,uuid,pci.bus_id,driver_version --format=csv,noheader >"$WORK/gpus" 2>/dev/null ||
  echo "dcgm-check: nvidia-smi could not list the GPUs"
echo "dcgm-check: running dcgmi diag -r $LEVEL -j"
dcgmi diag -r "$DCGM_DIAG_LEVEL" -j >"$WORK/dcgmi" 2>"$WORK/dcgmi.err"
CODE=$?
echo "dcgm-check: dcgmi exited $CODE"
SOURCE=none
if dmesg --time-format iso >"$WORK/kernel" 2>/dev/null || dmesg >"$WORK/kernel" 2>/dev/null; then
  SOURCE=dmesg
elif [ -n "${XID_LOG_FILE:-}" ] && [ -r "$XID_LOG_FILE" ]; then
  # A host log spans reboots: keep what follows the last boot's first kernel line.
  awk '/Linux version [0-9]/ { n = 0; next } { line[n++] = $0 } END { for (i = 0; i < n; i++) print line[i] }' \
    "$XID_LOG_FILE" >"$WORK/kernel"
  SOURCE=file
else
  : >"$WORK/kernel"
  echo "dcgm-check: kernel log not readable (dmesg not permitted, no XID_LOG_FILE): no XIDs collected"
fi
grep 'NVRM: Xid' "$WORK/kernel" >"$WORK/xids" 2>/dev/null || : >"$WORK/xids"
echo "dcgm-check: $(wc -l <"$WORK/xids" | tr -d ' ') XID line(s) from $SOURCE"
BOOT="$(awk '/^btime / { print $2 }' /proc/stat 2>/dev/null)"
awk -v code="$CODE" -v level="$LEVEL" -v gpus="$WORK/gpus" -v xids="$WORK/xids" -v dcgmi="$WORK/dcgmi" \
  -v dcgmierr="$WORK/dcgmi.err" -v maxbytes="$DCGMI_MAX_BYTES" -v maxxids="$XID_MAX_LINES" -v source="$SOURCE" \
  -v boot="${BOOT:-0}" -v now="$(date +%s)" '
# Split-and-join rather than gsub: a backslash in a gsub replacement means different things to mawk and gawk.
function rep(s, sep, with,   n, p, i, out) { n = split(s, p, sep); out = p[1]; for (i = 2; i <= n; i++) out = out with p[i]
  return out }
function esc(s) {
  s = rep(s, "\\\\", "\\\\"); s = rep(s, "\"", "\\\""); s = rep(s, "\t", "\\t"); s = rep(s, "\r", "\\r")
  s = rep(s, "\n", "\\n"); gsub(/[\001-\037\177]/, " ", s); return s
}
function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
function num(s) { return (s ~ /^[0-9]+$/) ? s + 0 : 0 }
# domain:bus:device without the domain leading zeros: 00000008:01:00.0 (nvidia-smi) = PCI:0008:01:00 (driver)
function buskey(s,   n, p, d) { s = tolower(s); sub(/^pci:/, "", s); sub(/\..*$/, "", s); n = split(s, p, ":")
  d = (n > 2) ? p[n - 2] : "0"; sub(/^0+/, "", d); if (d == "") d = "0"; return d ":" p[n - 1] ":" p[n] }
function slurp(file, limit,   text, line, cut) {
  text = ""; cut = 0
  while ((getline line < file) > 0) {
    if (length(text) + length(line) + 1 > limit) { text = text substr(line, 1, limit - length(text)); cut = 1; break }
    text = text line "\n"
  }
  close(file); truncated = cut; return text
}
BEGIN {
  ng = 0; gl = ""; driver = ""
  while ((getline line < gpus) > 0) {
    n = split(line, f, ","); if (n < 3 || trim(f[1]) !~ /^[0-9]+$/) continue
    idx = trim(f[1]); uuid = trim(f[2]); bus = trim(f[3]); if (n > 3) driver = trim(f[4]); byBus[buskey(bus)] = idx
    gl = gl (ng++ ? "," : "") "{\"index\":" idx ",\"uuid\":\"" esc(uuid) "\",\"pciBusId\":\"" esc(bus) "\"}"
  }
  # One entry per distinct message (the text from "NVRM: Xid" on); the last line logged and how many times.
  nd = 0
  while ((getline line < xids) > 0) {
    if (!match(line, /NVRM: Xid \([^)]*\): [0-9]+/)) continue
    msg = substr(line, RSTART)
    if (!(msg in seen)) { seen[msg] = ++nd; order[nd] = msg }
    last[msg] = trim(line); count[msg]++
  }
  first = (nd > maxxids) ? nd - maxxids + 1 : 1
  nx = 0; xl = ""
  for (i = first; i <= nd; i++) {
    msg = order[i]; match(msg, /NVRM: Xid \([^)]*\): [0-9]+/); m = substr(msg, RSTART, RLENGTH)
    pci = m; sub(/^NVRM: Xid \(/, "", pci); sub(/\).*$/, "", pci)
    x = m; sub(/^.*\): /, "", x)
    key = buskey(pci); gi = (key in byBus) ? byBus[key] : "null"
    xl = xl (nx++ ? "," : "") "{\"xid\":" x ",\"gpuIndex\":" gi ",\"pciBusId\":\"" esc(pci) "\",\"line\":\"" \
      esc(substr(last[msg], 1, 400)) "\",\"count\":" count[msg] "}"
  }
  out = slurp(dcgmi, maxbytes); cut = truncated
  err = slurp(dcgmierr, 2000)
  printf "GPU_RECOVERY_RESULT {\"version\":2,\"dcgmiExitCode\":%d,\"diagLevel\":%d,\"dcgmiOutput\":\"%s\",", \
    num(code), num(level), esc(out)
  printf "\"dcgmiTruncated\":%s,\"dcgmiStderr\":\"%s\",\"driverVersion\":\"%s\",\"bootTime\":%d,\"checkTime\":%d,", \
    (cut ? "true" : "false"), esc(err), esc(driver), num(boot), num(now)
  printf "\"xidSource\":\"%s\",\"xidsDropped\":%d,\"xids\":[%s],\"gpus\":[%s]}\n", source, first - 1, xl, gl
}'
rm -rf "$WORK"
exit "$CODE"
