# Sourced (not run) by tests/run.sh and tests/bench.sh with $repo set:
# installs the emulator, starts it or reuses one already running, and sets
# $endpoint. Stops it on exit only if this session started it, so a
# developer's running emulator is left alone.
"$repo/tests/emulator/install.sh" >&2
_emulator_was_running=false
if [[ -f "$repo/.emulator/pid" ]] && kill -0 "$(cat "$repo/.emulator/pid")" 2>/dev/null; then
  _emulator_was_running=true
fi
endpoint="$("$repo/tests/emulator/start.sh" | tail -n 1)"
if [[ "$_emulator_was_running" == false ]]; then
  trap '"$repo/tests/emulator/stop.sh" >&2' EXIT
fi
