# Sourced by the A/B scripts (variants.sh, ab-cpu.sh, idle-cpu.sh), for each child of the launcher PID,
# Cairn processes named by --id and nats-server as nats:
#   cpu_ticks PID prints "<name> <ticks>" (utime + stime);
#   wakeups PID prints "<name> <voluntary context switches of its main thread>".
children_named() {
  for pid in $(pgrep -P "$1"); do
    local name; name=$(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null | sed -n 's/.*--id \([^ ]*\).*/\1/p')
    [ -z "$name" ] && grep -q nats-server /proc/$pid/cmdline 2>/dev/null && name=nats
    [ -n "$name" ] && echo "$name $pid"
  done
}
cpu_ticks() {
  children_named "$1" | while read -r name pid; do awk -v n="$name" '{ print n, $14 + $15 }' /proc/$pid/stat 2>/dev/null; done
}
wakeups() {
  children_named "$1" | while read -r name pid; do awk -v n="$name" '/^voluntary_ctxt_switches/ { print n, $2 }' /proc/$pid/status 2>/dev/null; done
}
