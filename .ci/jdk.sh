# Sourced by ./stowage and .ci/run: points JAVA_HOME at a JDK that is 21 or newer.
# Order: an existing JAVA_HOME that qualifies, then the newest JDK under the usual install roots.
stowage_java_major() {
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p'
}
stowage_select_jdk() {
  local want=21 best="" best_major=0 major dir
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    major=$(stowage_java_major "$JAVA_HOME")
    if [ "${major:-0}" -ge "$want" ]; then return 0; fi
  fi
  for dir in /usr/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/*; do
    [ -x "$dir/bin/javac" ] || continue
    major=$(stowage_java_major "$dir")
    if [ "${major:-0}" -ge "$want" ] && [ "${major:-0}" -gt "$best_major" ]; then
      best="$dir"; best_major="$major"
    fi
  done
  if [ -z "$best" ] && command -v javac >/dev/null 2>&1; then
    dir=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
    major=$(stowage_java_major "$dir")
    if [ "${major:-0}" -ge "$want" ]; then best="$dir"; fi
  fi
  if [ -z "$best" ]; then
    echo "stowage: no JDK $want or newer found (looked at JAVA_HOME, /usr/lib/jvm, /opt). Install one (e.g. Temurin 21+) and set JAVA_HOME." >&2
    return 1
  fi
  export JAVA_HOME="$best"
}
