# Helpers the test scripts share; source it from scripts/*.sh.

# Prints the value of KEY in the JSON object on standard input.
json_field() {
  python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Prints a TCP port free on 127.0.0.1 now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Builds the named examples and sets `examples` to the directory holding them.
# ELBSTORE_SCRIPT_PROFILE picks the cargo profile: `release` unless set. CI
# sets `test`, the profile `cargo test` has just built every example in, so
# the scripts reuse those binaries instead of building every dependency a
# second time at opt-level 3 (ten minutes on a 2-core machine). The scripts
# check what survives a kill or a lost disk, not how fast: any profile serves.
build_examples() {
  local profile=${ELBSTORE_SCRIPT_PROFILE:-release}
  local args=()
  for name in "$@"; do args+=(--example "$name"); done
  cargo build --quiet --profile "$profile" "${args[@]}"
  case "$profile" in
    dev | test) examples=target/debug/examples ;;
    *) examples=target/$profile/examples ;;
  esac
}
