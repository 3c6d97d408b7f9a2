#!/usr/bin/env bash
# ngx_edge_orch_module: one entry point for set-up, build, tests, demo, bench.
#
#   ./build.sh deps            apt-get install everything (Debian 12)
#   ./build.sh build [--asan]  module .so (+ CLI) into build/
#   ./build.sh test [--valgrind] [prove args]   deps + build + run t/ (prove)
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
 libnginx-mod-http-lua libnginx-mod-http-echo libyaml-perl nodejs"

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
        cc_opt="$cc_opt -fsanitize=address,undefined -fno-omit-frame-pointer"
        ld_opt="$ld_opt -fsanitize=address,undefined"
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
    [ $asan = 1 ] && cli_flags="$cli_flags -fsanitize=address,undefined"
    if [ -f tools/edge-orch-routes.c ]; then
        # shellcheck disable=SC2086
        gcc $cli_flags tools/edge-orch-routes.c -o "$CLI" \
            -llmdb -ljansson -lpcre2-8
        log "cli: $CLI"
    fi
}

cmd_test() {
    local valgrind=0 args=()
    for a in "$@"; do
        case "$a" in
            --valgrind) valgrind=1 ;;
            *) args+=("$a") ;;
        esac
    done
    cmd_deps
    cmd_build
    export TEST_NGINX_EDGE_ORCH_SO="$SO"
    export TEST_NGINX_EDGE_ORCH_CLI="$CLI"
    export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"
    [ $valgrind = 1 ] && export TEST_NGINX_USE_VALGRIND=1
    local inc=()
    if ! perl -MTest::Nginx::Socket -e1 2>/dev/null; then
        inc=(-I "$here/t/compat")
    fi
    [ ${#args[@]} -gt 0 ] || args=(-r t/)
    prove "${inc[@]}" "${args[@]}"
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
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
