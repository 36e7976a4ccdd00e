# Shared helpers for scripts/test and scripts/run. Source it; it defines functions only.
# shellcheck shell=bash

HAVEN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HAVEN_VENV="$HAVEN_ROOT/.venv"
HAVEN_STAMP="$HAVEN_VENV/.haven-installed"

haven_header() {
  printf '\n==> %s\n' "$*"
}

# Run a command as root: directly when we are root, else through sudo when it exists.
haven_as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

haven_apt_install() {
  haven_header "Installing Debian packages: $*"
  haven_as_root apt-get update
  haven_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# Create .venv if missing and (re)install the project with its dev extras when the venv is new or
# pyproject.toml changed since the last install (HAVEN_REINSTALL=1 forces it).
haven_ensure_venv() {
  if [[ ! -x "$HAVEN_VENV/bin/python" ]]; then
    haven_header "Creating virtualenv $HAVEN_VENV"
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
      haven_apt_install python3-venv
    fi
    if ! python3 -m venv "$HAVEN_VENV"; then
      # e.g. Debian without python3-venv: venv leaves a half-made directory behind.
      rm -rf "$HAVEN_VENV"
      haven_apt_install python3-venv
      python3 -m venv "$HAVEN_VENV"
    fi
    rm -f "$HAVEN_STAMP"
  fi
  if [[ "${HAVEN_REINSTALL:-0}" == "1" || ! -f "$HAVEN_STAMP" || "$HAVEN_ROOT/pyproject.toml" -nt "$HAVEN_STAMP" ]]; then
    haven_header "Installing haven and dev dependencies"
    (cd "$HAVEN_ROOT" && "$HAVEN_VENV/bin/python" -m pip install -q -e '.[dev]')
    touch "$HAVEN_STAMP"
  fi
}

haven_find_initdb() {
  local candidate
  if candidate="$(command -v initdb 2>/dev/null)"; then
    printf '%s\n' "$candidate"
    return 0
  fi
  for candidate in /usr/lib/postgresql/*/bin/initdb; do
    if [[ -x "$candidate" ]]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

# The tests start their own throwaway PostgreSQL server; make sure its binaries are installed.
haven_ensure_postgres() {
  if ! haven_find_initdb >/dev/null; then
    haven_apt_install postgresql
    haven_find_initdb >/dev/null || {
      echo "error: installed postgresql but initdb is still not found" >&2
      return 1
    }
  fi
}
