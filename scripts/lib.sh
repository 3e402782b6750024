# Helpers the test scripts share; source it from scripts/*.sh.

# Prints the value of KEY in the JSON object on standard input.
json_field() {
  python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Prints a TCP port free on 127.0.0.1 now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Builds the named examples and sets `examples` to the directory holding them
# (under ./target: CARGO_TARGET_DIR is not followed).
# ELBSTORE_SCRIPT_PROFILE picks the cargo profile: `release` unless set. CI
# sets `test`, the profile `cargo test` has just built every example in, so
# the scripts reuse those binaries instead of building every dependency a
# second time at opt-level 3 (ten minutes on a 2-core machine). What that
# gives up: the timing of optimised code is not what CI soaks (the long
# soaks in RELIABILITY.md run release builds). The load is not much less:
# the kill soak is bound by fsync, not by the code.
build_examples() {
  local profile=${ELBSTORE_SCRIPT_PROFILE:-release}
  local args=() name
  for name in "$@"; do args+=(--example "$name"); done
  cargo build --quiet --profile "$profile" "${args[@]}"
  case "$profile" in
    dev | test) examples=target/debug/examples ;;
    release | bench) examples=target/release/examples ;;
    *) examples=target/$profile/examples ;;
  esac
}
