# Sourced by .ci/run and ./run-pipeline: exports JAVA_HOME as the newest JDK >= 21 found in
# JAVA_HOME, on PATH or in the usual JVM directories, or fails with a clear message.
_tm_major_of() {
  "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version =/ {print $2; exit}'
}
_tm_pick_jdk() {
  local best="" best_major=0 candidate major
  local candidates=()
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  command -v java >/dev/null 2>&1 && candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  for candidate in /usr/lib/jvm/* /usr/java/* /opt/java/* /opt/jdk* /Library/Java/JavaVirtualMachines/*/Contents/Home; do
    [ -d "$candidate" ] && candidates+=("$candidate")
  done
  for candidate in "${candidates[@]}"; do
    [ -x "$candidate/bin/java" ] && [ -x "$candidate/bin/javac" ] || continue
    major=$(_tm_major_of "$candidate/bin/java")
    major=${major%%.*}
    [[ "$major" =~ ^[0-9]+$ ]] || continue
    if [ "$major" -ge 21 ] && [ "$major" -gt "$best_major" ]; then
      best="$candidate"; best_major="$major"
    fi
  done
  [ -n "$best" ] && echo "$best"
}
_tm_jdk=$(_tm_pick_jdk || true)
if [ -z "$_tm_jdk" ]; then
  echo "error: no JDK 21 or newer found (looked at JAVA_HOME, java on PATH, /usr/lib/jvm/*)." >&2
  echo "       Install one (e.g. Temurin 21) or set JAVA_HOME to it." >&2
  exit 1
fi
export JAVA_HOME="$_tm_jdk"
export PATH="$JAVA_HOME/bin:$PATH"
