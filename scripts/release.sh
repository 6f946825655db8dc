#!/usr/bin/env bash
# Builds morgue for jump hosts: one static x86_64 Linux executable (musl; librdkafka,
# OpenSSL, zlib and zstd compiled in), a tarball, and a .deb with the man page and the
# shell completions, all under dist/. Then checks what it built: `file` says statically
# linked, `ldd` finds no shared library, `--version` runs, and `list` reads a letter
# from the local broker (started by scripts/services.sh, or MORGUE_TEST_KAFKA).
#   scripts/release.sh              build and check
#   scripts/release.sh --build-only only build
# CI (.ci/run) runs it after the test suite (scripts/test.sh).
# Installs what it needs: the musl target (rustup) and musl-tools (apt).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET=x86_64-unknown-linux-musl
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
NAME=morgue-$VERSION-$TARGET

installed=$(rustup target list --installed)
grep -qx "$TARGET" <<<"$installed" || rustup target add "$TARGET"
need=()
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v file >/dev/null || need+=(file)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v kcat >/dev/null || need+=(kcat)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

export CC_x86_64_unknown_linux_musl=musl-gcc
start=$(date +%s)
cargo build --release --locked --target "$TARGET" --features static
built=$(( $(date +%s) - start ))
if [ "${1:-}" = --build-only ]; then
  echo "release: built in $built s"
  exit 0
fi
BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/morgue

DIST=dist
mkdir -p "$DIST"
rm -rf "$DIST/$NAME" "$DIST/$NAME.tar.gz"
mkdir -p "$DIST/$NAME/completions"
cp "$BIN" "$DIST/$NAME/morgue"
strip "$DIST/$NAME/morgue"
"$DIST/$NAME/morgue" man > "$DIST/$NAME/morgue.1"
for sh in bash zsh fish; do
  "$DIST/$NAME/morgue" completions "$sh" > "$DIST/$NAME/completions/morgue.$sh"
done
cp -r README.md docs "$DIST/$NAME/"
tar -C "$DIST" -czf "$DIST/$NAME.tar.gz" "$NAME"

# The .deb: the binary, the man page and the completions where Debian looks for them,
# the systemd units and the alert rules.
DEB=$DIST/deb
rm -rf "$DEB"
install -D -m 0755 "$DIST/$NAME/morgue" "$DEB/usr/bin/morgue"
install -D -m 0644 "$DIST/$NAME/morgue.1" "$DEB/usr/share/man/man1/morgue.1"
gzip -9n "$DEB/usr/share/man/man1/morgue.1"
install -D -m 0644 "$DIST/$NAME/completions/morgue.bash" "$DEB/usr/share/bash-completion/completions/morgue"
install -D -m 0644 "$DIST/$NAME/completions/morgue.zsh" "$DEB/usr/share/zsh/vendor-completions/_morgue"
install -D -m 0644 "$DIST/$NAME/completions/morgue.fish" "$DEB/usr/share/fish/vendor_completions.d/morgue.fish"
# The router and exporter as services (enabled by hand), and alert rules to start from.
install -D -m 0644 assets/systemd/morgue-router@.service "$DEB/lib/systemd/system/morgue-router@.service"
install -D -m 0644 assets/systemd/morgue-exporter.service "$DEB/lib/systemd/system/morgue-exporter.service"
install -D -m 0644 assets/alerts.yml "$DEB/usr/share/morgue/alerts.yml"
mkdir -p "$DEB/DEBIAN"
cat > "$DEB/DEBIAN/control" <<EOF
Package: morgue
Version: $VERSION
Section: utils
Priority: optional
Architecture: amd64
Maintainer: morgue developers <morgue@localhost>
Description: Terminal UI for Kafka and MongoDB dead-letter queues
 Stream, inspect, fix and replay failed messages; one static executable.
EOF
dpkg-deb --root-owner-group --build "$DEB" "$DIST/morgue_${VERSION}_amd64.deb" >/dev/null
rm -rf "$DEB"

echo "== checks"
BIN=$DIST/$NAME/morgue
# Captured, not piped into grep -q: an early exit would break the pipe (and pipefail).
desc=$(file "$BIN")
echo "$desc"
grep -qE "statically linked|static-pie linked" <<<"$desc"
libs=$(ldd "$BIN" 2>&1 || true)
if grep -q "=>" <<<"$libs"; then
  echo "release: $BIN links shared libraries:" >&2; ldd "$BIN" >&2; exit 1
fi
"$BIN" --version
contents=$(dpkg-deb --contents "$DIST/morgue_${VERSION}_amd64.deb")
grep -q "usr/share/man/man1/morgue.1.gz" <<<"$contents"
grep -q "lib/systemd/system/morgue-router@.service" <<<"$contents"
grep -q "usr/share/morgue/alerts.yml" <<<"$contents"
eval "$(scripts/services.sh up)"
B=$MORGUE_TEST_KAFKA
T=release-check-$(date +%s)-$$
printf '{"check":true}\n' | kcat -P -b "$B" -t "$T" -k "6f1c2a9e-3b4d-4e5f-9a8b-1c2d3e4f5a6b" \
  -H "kafka_dlt-original-topic=orders" -H "kafka_dlt-exception-fqcn=com.acme.Boom"
got=$("$BIN" list --kafka "$B" --topic "$T")
grep -q '"data":"6f1c2a9e-3b4d-4e5f-9a8b-1c2d3e4f5a6b"' <<<"$got" ||
  { echo "release: the static binary did not list the letter: $got" >&2; exit 1; }
printf 'release: %s (%s bytes), %s.tar.gz, morgue_%s_amd64.deb; built in %s s; checks passed\n' \
  "$BIN" "$(stat -c %s "$BIN")" "$DIST/$NAME" "$VERSION" "$built"
