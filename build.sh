#!/usr/bin/env bash
# ngx_edge_orch_module: one entry point for set-up, build, tests, demo, bench.
#
#   ./build.sh deps            apt-get install everything (Debian 12)
#   ./build.sh build [--asan]  module .so (+ CLI) into build/
#   ./build.sh test [--valgrind|--asan] [prove args]
#                              deps + build + run t/ (prove); --asan: the
#                              ASan+UBSan module (build/asan) loaded into
#                              Debian's nginx, any sanitizer report fails
#   ./build.sh fuzz [seconds]  libFuzzer targets in fuzz/ (clang), each
#                              for [seconds] (default 30); fuzz --replay
#                              runs the seeds and fuzz/regressions/ once
#   ./build.sh demo            deps + build + the news-site demo on 127.0.0.1
#   ./build.sh bench           deps + build + benchmarks (bench/run)
#
# NGINX_SRC=/path/to/nginx-x.y.z builds against an upstream source tree
# (configured --with-compat) instead of Debian's nginx-dev.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

APT_PACKAGES="nginx-core nginx-dev liblmdb-dev lmdb-utils libjansson-dev
 libpcre2-dev gcc make perl libtest-base-perl libtext-diff-perl
 liblist-moreutils-perl libtest-longstring-perl valgrind wrk curl
 libnginx-mod-http-lua libnginx-mod-http-echo libyaml-perl nodejs gdb"

BUILD="${EDGE_ORCH_BUILD:-$here/build}"
SO="$BUILD/nginx/ngx_http_edge_orch_module.so"
CLI="$here/tools/edge-orch-routes"
CFLAGS_WARN="-Wall -Wextra -Werror -Wno-unused-parameter"

log() { printf '==> %s\n' "$*" >&2; }

cmd_deps() {
    local missing=""
    for p in $APT_PACKAGES; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -z "$missing" ]; then
        log "all packages present"
        return 0
    fi
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # Debian starts the packaged nginx on port 80; this project does not
    # need it (tests and demo run their own instances on 127.0.0.1)
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl disable --now nginx >/dev/null 2>&1 || true
    fi
}

cmd_build() {
    local asan=0 cc_opt ld_opt src
    for a in "$@"; do
        case "$a" in
            --asan) asan=1 ;;
            *) echo "build: unknown option $a" >&2; exit 2 ;;
        esac
    done

    cc_opt="-g -O2 -fPIC $CFLAGS_WARN"
    ld_opt="-fPIC"
    if [ $asan = 1 ]; then
        cc_opt="$cc_opt -fsanitize=address,undefined -fno-sanitize-recover=all"
        cc_opt="$cc_opt -fno-omit-frame-pointer"
        ld_opt="$ld_opt -fsanitize=address,undefined"
        # an instrumented CLI must not replace the one other runs use
        CLI="$BUILD/edge-orch-routes"
    fi

    mkdir -p "$BUILD"
    if [ -n "${NGINX_SRC:-}" ]; then
        src="$NGINX_SRC"
        # a separate build dir: never clobber the .so the tests load
        BUILD="$BUILD/custom"
        SO="$BUILD/nginx/ngx_http_edge_orch_module.so"
        mkdir -p "$BUILD"
        log "building against $src (--with-compat)"
        (cd "$src" && ./configure --with-compat \
            --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
            --add-dynamic-module="$here" --builddir="$BUILD/nginx" \
            >"$BUILD/configure.log" 2>&1) || {
                tail -20 "$BUILD/configure.log" >&2; exit 1; }
    else
        src=/usr/share/nginx/src
        [ -d "$src" ] || { echo "nginx-dev missing: run ./build.sh deps" >&2;
                           exit 1; }
        log "building against Debian nginx-dev ($(nginx -v 2>&1 | sed 's/.*\///'))"
        # configure only when needed: a new source file in ./config, other
        # flags, or a half-written earlier run
        local stamp="$BUILD/nginx/.configured"
        if [ ! -f "$BUILD/nginx/Makefile" ] || [ ! -f "$stamp" ] \
           || [ config -nt "$stamp" ] \
           || [ "$(cat "$stamp")" != "$cc_opt" ] \
           || [ "$(wc -c < "$BUILD/nginx/ngx_auto_headers.h")" -lt 100 ]
        then
            rm -f "$stamp"
            # shellcheck disable=SC1091
            (cd "$src" && . ./conf_flags && ./configure "${NGX_CONF_FLAGS[@]}" \
                --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
                --add-dynamic-module="$here" --builddir="$BUILD/nginx" \
                >"$BUILD/configure.log" 2>&1) || {
                    tail -20 "$BUILD/configure.log" >&2; exit 1; }
            printf '%s' "$cc_opt" > "$stamp"
        fi
    fi
    make -s -f "$BUILD/nginx/Makefile" -C "$src" modules \
        >"$BUILD/make.log" 2>&1 || { cat "$BUILD/make.log" >&2; exit 1; }
    log "module: $SO"

    local cli_flags="-std=gnu99 -O2 -g $CFLAGS_WARN"
    [ $asan = 1 ] && cli_flags="$cli_flags -fsanitize=address,undefined \
                                -fno-sanitize-recover=all"
    if [ -f tools/edge-orch-routes.c ]; then
        # shellcheck disable=SC2086
        gcc $cli_flags tools/edge-orch-routes.c -o "$CLI" \
            -llmdb -ljansson -lpcre2-8
        log "cli: $CLI"
    fi
}

cmd_test() {
    local valgrind=0 asan=0 args=() rc=0
    for a in "$@"; do
        case "$a" in
            --valgrind) valgrind=1 ;;
            --asan) asan=1 ;;
            *) args+=("$a") ;;
        esac
    done
    cmd_deps
    if [ $asan = 1 ]; then
        # a separate build dir: the plain .so of other runs stays as it is
        BUILD="${EDGE_ORCH_BUILD:-$here/build/asan}"
        SO="$BUILD/nginx/ngx_http_edge_orch_module.so"
        cmd_build --asan
        asan_wrapper
        export TEST_NGINX_BINARY="$BUILD/nginx-asan"
        # reports that reach the error log fail the block (t/compat)
        export TEST_NGINX_CHECK_SANITIZER=1
    else
        cmd_build
        export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"
    fi
    export TEST_NGINX_EDGE_ORCH_SO="$SO"
    export TEST_NGINX_EDGE_ORCH_CLI="$CLI"
    [ $valgrind = 1 ] && export TEST_NGINX_USE_VALGRIND=1
    local inc=()
    if ! perl -MTest::Nginx::Socket -e1 2>/dev/null; then
        inc=(-I "$here/t/compat")
    fi
    [ ${#args[@]} -gt 0 ] || args=(-r t/)
    prove "${inc[@]}" "${args[@]}" || rc=$?
    return $rc
}

# Debian's nginx is not instrumented: the ASan runtime must be loaded
# before anything else, so nginx (and only nginx: not prove, not the
# mocks) starts through a wrapper that preloads it.  Reports go to
# nginx's stderr, i.e. the error log, where the runner looks for them
# after every block (TEST_NGINX_CHECK_SANITIZER); the first report ends
# the process (-fno-sanitize-recover=all, halt_on_error).
asan_wrapper() {
    local lib
    lib=$(gcc -print-file-name=libasan.so)
    [ -f "$lib" ] || { echo "libasan not found (gcc)" >&2; exit 1; }
    cat > "$BUILD/nginx-asan" <<EOF
#!/bin/sh
# generated by build.sh test --asan
export LD_PRELOAD="$lib\${LD_PRELOAD:+:\$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:\
detect_odr_violation=0"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
exec /usr/sbin/nginx "\$@"
EOF
    chmod +x "$BUILD/nginx-asan"
}

# libFuzzer targets (fuzz/): each parser that takes outside bytes, built
# with clang (ASan + UBSan) against nginx's headers and a small shim of
# the core functions they call (fuzz/ngx_shim.c), run for $1 seconds each
# from the seed corpus fuzz/corpus/<target>/.  A crash is copied to
# fuzz/regressions/<target>/ (replayed by t/081-fuzz-regressions.t) and
# fails the run.
FUZZ_TARGETS="routes tags json purge"

fuzz_build() {
    local out="$BUILD/fuzz" inc t extra src
    command -v clang >/dev/null 2>&1 || {
        export DEBIAN_FRONTEND=noninteractive
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
    }
    mkdir -p "$out"
    src=/usr/share/nginx/src/src
    inc="-I$src/core -I$src/event -I$src/event/modules -I$src/os/unix"
    inc="$inc -I$src/http -I$src/http/modules -I$src/http/v2"
    inc="$inc -I$BUILD/nginx -I$here/ngx_edge_orch_module -I$here/fuzz"
    for t in $FUZZ_TARGETS; do
        case $t in
            routes) extra="" ;;
            tags)   extra="ngx_edge_orch_module/ngx_http_edge_orch_tags.c fuzz/ngx_shim.c" ;;
            json)   extra="ngx_edge_orch_module/ngx_http_edge_orch_assemble.c fuzz/ngx_shim.c" ;;
            purge)  extra="fuzz/ngx_shim.c" ;;
        esac
        # the module's other nginx symbols are never reached by a parser:
        # a first link lists them, and each becomes a stub in .bss (a call
        # or a read through one would crash, never pass silently)
        : > "$out/stubs_$t.c"
        local try
        for try in 1 2; do
            # shellcheck disable=SC2086
            if clang -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -Wno-unused-parameter $inc \
                "fuzz/fuzz_$t.c" $extra "$out/stubs_$t.c" -o "$out/fuzz_$t" \
                -llmdb -ljansson -lpcre2-8 >"$out/fuzz_$t.log" 2>&1
            then
                break
            fi
            [ $try = 1 ] || { cat "$out/fuzz_$t.log" >&2; exit 1; }
            grep -o "undefined reference to \`[A-Za-z0-9_]*'" \
                "$out/fuzz_$t.log" | sed "s/.*\`//; s/'$//" | sort -u \
                | sed 's/.*/char &[4096] __attribute__((aligned(64)));/' \
                > "$out/stubs_$t.c"
        done
    done
    log "fuzz targets: $out"
}

# replay the seeds and every regression input once (t/081)
fuzz_replay() {
    local t out="$BUILD/fuzz" rc=0 files
    [ -f "$BUILD/nginx/ngx_auto_config.h" ] || cmd_build
    fuzz_build
    for t in $FUZZ_TARGETS; do
        files=$(find "fuzz/corpus/$t" "fuzz/regressions/$t" -type f \
                     2>/dev/null | sort || true)
        [ -n "$files" ] || continue
        # shellcheck disable=SC2086
        if "$out/fuzz_$t" -close_fd_mask=2 $files \
                >"$out/replay_$t.log" 2>&1; then
            echo "ok $t: $(echo "$files" | wc -l) inputs"
        else
            echo "FAIL $t"
            tail -30 "$out/replay_$t.log"
            rc=1
        fi
    done
    return $rc
}

cmd_fuzz() {
    local secs="${1:-30}" t out="$BUILD/fuzz" rc=0 c mask
    if [ "$secs" = --replay ]; then
        fuzz_replay
        return
    fi
    cmd_build
    fuzz_build
    for t in $FUZZ_TARGETS; do
        mkdir -p "$out/corpus/$t" "fuzz/regressions/$t" "$out/crash/$t"
        log "fuzz $t for ${secs}s"
        # the working corpus grows in build/; the seeds stay as committed
        # the CLI reports every rejected table on stderr: close it
        # (libFuzzer and the sanitizers keep a copy for their reports)
        mask=0
        [ $t = routes ] && mask=2
        if ! "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 \
                -close_fd_mask=$mask \
                -rss_limit_mb=2048 -max_len=262144 \
                -artifact_prefix="$out/crash/$t/" \
                "$out/corpus/$t" "fuzz/corpus/$t" >"$out/fuzz_$t.run" 2>&1
        then
            rc=1
            for c in "$out/crash/$t"/*; do
                [ -f "$c" ] || continue
                cp "$c" "fuzz/regressions/$t/"
                log "CRASH in $t: fuzz/regressions/$t/$(basename "$c")"
            done
            tail -40 "$out/fuzz_$t.run" >&2
        fi
        grep -E '^(#[0-9]+\s+DONE|Done)' "$out/fuzz_$t.run" | tail -2 >&2 || true
    done
    [ $rc = 0 ] && log "fuzz: no crash" || log "fuzz: FAILED"
    return $rc
}

cmd_demo() {
    cmd_deps
    cmd_build
    exec bash "$here/examples/demo.sh" "$SO" "$CLI"
}

cmd_bench() {
    cmd_deps
    cmd_build
    exec bash "$here/bench/run" "$SO" "$CLI" "$@"
}

case "${1:-}" in
    deps)  shift; cmd_deps "$@" ;;
    build) shift; cmd_build "$@" ;;
    test)  shift; cmd_test "$@" ;;
    demo)  shift; cmd_demo "$@" ;;
    bench) shift; cmd_bench "$@" ;;
    fuzz)  shift; cmd_fuzz "$@" ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac
