# Sourced by the A/B scripts (variants.sh, ab-cpu.sh): cpu_ticks PID prints "<name> <ticks>"
# (utime + stime) for each child of the launcher PID: Cairn processes by --id, nats-server as nats.
cpu_ticks() {
  for pid in $(pgrep -P "$1"); do
    local name; name=$(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null | sed -n 's/.*--id \([^ ]*\).*/\1/p')
    [ -z "$name" ] && grep -q nats-server /proc/$pid/cmdline 2>/dev/null && name=nats
    [ -n "$name" ] && awk -v n="$name" '{ print n, $14 + $15 }' /proc/$pid/stat 2>/dev/null
  done
}
