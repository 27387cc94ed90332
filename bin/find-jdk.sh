#!/usr/bin/env bash
# Finds a JDK >= 21 for the build and the run scripts.
#
#   source bin/find-jdk.sh     (.ci/run, ./run-pipeline) exports JAVA_HOME (and puts it first on PATH) as the
#                              newest JDK >= 21 found in JAVA_HOME, on PATH or in the usual JVM directories.
#   bin/find-jdk.sh --print    (./mvnw) prints the JDK to use: JAVA_HOME's (or java on PATH's) when it is 21 or
#                              newer, else the newest JDK >= 21 found beside it.
#
# Either way, when there is none it prints ONE line to stderr and fails (exit status 1).
# TOKENMETER_JDK_DIRS (colon-separated) replaces everything searched: only those directories and the JDK homes
# directly inside them are candidates (JAVA_HOME and PATH are then ignored), so the choice can be tested.

# Major version of the JDK at $1: from its `release` file, else by asking its java.
_tm_major_of() {
  local v=""
  if [ -f "$1/release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$1/release" | head -1)
  fi
  if [ -z "$v" ]; then
    v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version =/ {print $2; exit}')
  fi
  v=${v#1.}   # 1.8 -> 8
  v=${v%%[!0-9]*}
  [ -n "$v" ] && echo "$v"
}

_tm_is_jdk() {
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ]
}

# The JDK the caller already chose: JAVA_HOME, else the one of java on PATH (none under TOKENMETER_JDK_DIRS).
_tm_current_jdk() {
  [ -n "${TOKENMETER_JDK_DIRS:-}" ] && return 0
  if [ -n "${JAVA_HOME:-}" ]; then
    echo "$JAVA_HOME"
  elif command -v java >/dev/null 2>&1; then
    dirname "$(dirname "$(readlink -f "$(command -v java)")")"
  fi
}

_tm_candidates() {
  local dir candidate
  if [ -n "${TOKENMETER_JDK_DIRS:-}" ]; then
    local IFS=:
    for dir in $TOKENMETER_JDK_DIRS; do
      [ -d "$dir" ] || continue
      echo "$dir"
      for candidate in "$dir"/*; do [ -d "$candidate" ] && echo "$candidate"; done
    done
    return 0
  fi
  _tm_current_jdk
  for candidate in /usr/lib/jvm/* /usr/java/* /opt/java/* /opt/jdk* /Library/Java/JavaVirtualMachines/*/Contents/Home; do
    [ -d "$candidate" ] && echo "$candidate"
  done
}

# The newest JDK >= 21 among the candidates (nothing when there is none).
_tm_newest_jdk() {
  local best="" best_major=0 candidate major
  while IFS= read -r candidate; do
    _tm_is_jdk "$candidate" || continue
    major=$(_tm_major_of "$candidate") || continue
    if [ "$major" -ge 21 ] && [ "$major" -gt "$best_major" ]; then
      best="$candidate"; best_major="$major"
    fi
  done < <(_tm_candidates)
  [ -n "$best" ] && echo "$best"
}

_tm_none_found() {
  local where="JAVA_HOME, java on PATH, /usr/lib/jvm, /usr/java, /opt/java, /opt/jdk*"
  [ -n "${TOKENMETER_JDK_DIRS:-}" ] && where="TOKENMETER_JDK_DIRS=$TOKENMETER_JDK_DIRS"
  echo "error: tokenmeter needs a JDK 21 or newer and found none (looked in $where); install one (e.g. Temurin 21) or set JAVA_HOME to it." >&2
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced.
  _tm_jdk=$(_tm_newest_jdk || true)
  if [ -z "$_tm_jdk" ]; then
    _tm_none_found
    return 1 2>/dev/null || exit 1
  fi
  export JAVA_HOME="$_tm_jdk"
  export PATH="$JAVA_HOME/bin:$PATH"
  unset _tm_jdk
else
  case "${1:-}" in
    --print) ;;
    *) echo "usage: source bin/find-jdk.sh | bin/find-jdk.sh --print" >&2; exit 2 ;;
  esac
  current=$(_tm_current_jdk)
  if [ -n "$current" ] && _tm_is_jdk "$current" && major=$(_tm_major_of "$current") && [ "$major" -ge 21 ]; then
    echo "$current"
    exit 0
  fi
  newest=$(_tm_newest_jdk || true)
  if [ -z "$newest" ]; then
    _tm_none_found
    exit 1
  fi
  echo "$newest"
fi
