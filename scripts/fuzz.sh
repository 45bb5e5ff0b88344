#!/usr/bin/env bash
# fuzz.sh: builds one libFuzzer harness of Fuzz/ (outside the SwiftPM graph) and runs it for a while.
# Usage: scripts/fuzz.sh TARGET [SECONDS=60] [extra libFuzzer flags]
#   TARGET: http | websocket | json | sse | summary | patch   (scripts/fuzz.sh --list prints them)
# Builds are cached under .build-fuzz/ (git-ignored): each module's object is rebuilt only when one of its
# sources changed. New interesting inputs go to .build-fuzz/corpus/TARGET (the committed seeds in
# Fuzz/corpus/TARGET are read, never written). Exit status: 0 when the run ended without a finding, non-zero
# on a crash, a broken invariant, a leak or a timeout; the input that did it is kept in .build-fuzz/crashes/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

targets="http websocket json sse summary patch"
if [ "${1:-}" = "--list" ]; then echo "$targets"; exit 0; fi
target="${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags]  (targets: $targets)}"
seconds="${2:-60}"
shift $(( $# >= 2 ? 2 : 1 ))

# The modules each harness links, in dependency order (Package.swift's graph, the part these need).
case "$target" in
  http) modules="HTTP1" ;;
  websocket) modules="IOBytes HTTP1 WebSocket" ;;
  json) modules="Protocol" ;;
  sse|summary|patch) modules="Protocol Pipeline" ;;
  *) echo "unknown target '$target' (targets: $targets)" >&2; exit 2 ;;
esac

swiftc="${SWIFTC:-swiftc}"
out=.build-fuzz
mkdir -p "$out/modules" "$out/obj" "$out/bin" "$out/corpus/$target" "$out/crashes/$target"
# Release-like code (assertions and preconditions stay on) with coverage for libFuzzer and AddressSanitizer.
flags=(-swift-version 6 -O -g -sanitize=fuzzer,address -I "$out/modules" -I Sources/CZlib
       -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility
       -enable-upcoming-feature InternalImportsByDefault)

objects=()
for module in $modules; do
  object="$out/obj/$module.o"
  sources=(Sources/"$module"/*.swift)
  # Rebuild when a source (or the script) is newer than the object, or a dependency was rebuilt this run.
  if [ ! -f "$object" ] || [ -n "$(find "${sources[@]}" scripts/fuzz.sh -newer "$object" 2>/dev/null)" ] || [ -n "${rebuilt:-}" ]; then
    echo "== fuzz: compiling $module" >&2
    "$swiftc" "${flags[@]}" -parse-as-library -module-name "$module" -wmo -c "${sources[@]}" -o "$object" \
      -emit-module -emit-module-path "$out/modules/$module.swiftmodule"
    rebuilt=1
  fi
  objects+=("$object")
done

binary="$out/bin/fuzz-$target"
harness=(Fuzz/Support/*.swift "Fuzz/Targets/$target.swift")
if [ ! -x "$binary" ] || [ -n "$(find "${harness[@]}" "${objects[@]}" -newer "$binary")" ]; then
  echo "== fuzz: linking fuzz-$target" >&2
  "$swiftc" "${flags[@]}" -parse-as-library -module-name "Fuzz_$target" "${harness[@]}" "${objects[@]}" -lz -o "$binary"
fi

echo "== fuzz: $target for ${seconds}s" >&2
set +e
# Swift's own crash backtracer would wait on the dying process under ASan; libFuzzer prints the stack itself.
SWIFT_BACKTRACE=enable=no "$binary" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$out/crashes/$target/" "$@" "$out/corpus/$target" "Fuzz/corpus/$target"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "== fuzz: $target FAILED (exit $status); kept inputs:" >&2
  ls -1t "$out/crashes/$target/" | head -5 | sed "s|^|   $out/crashes/$target/|" >&2
fi
exit "$status"
