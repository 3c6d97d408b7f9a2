#!/usr/bin/env bash
# ngx_edge_orch_module demo: a news site's home page assembled at the edge.
#
#   bash examples/demo.sh MODULE.so EDGE-ORCH-ROUTES-CLI      (or ./build.sh demo)
#
# Starts one private nginx (orchestrator + mock regional APIs, all on
# 127.0.0.1) from examples/nginx.conf.in, compiles examples/routes.json into
# an LMDB routing table and walks through: routing by region and device,
# parallel fan-out, a live route change without reload, upstream failures,
# the edge cache (hits, collapsed miss storms, purge by tag,
# stale-if-error) and pass mode (a Node.js origin, examples/origin/server.js,
# renders the HTML page from the edge's data; skipped without node).
# Everything lives in a temporary run directory that is removed at the end
# (also on error or Ctrl-C).
#
# Environment:
#   EDGE_ORCH_DEMO_PORT=8080        orchestrator port
#   EDGE_ORCH_DEMO_MOCK_PORT=18101  first mock port (one port per instance;
#                                   the origin gets the port after the mocks)
#   EDGE_ORCH_DEMO_KEEP=1           leave nginx running and keep the run dir
#   NGINX=/usr/sbin/nginx           nginx binary (1.22, built --with-compat)
#   EDGE_ORCH_DEMO_ECHO_SO=...      echo module (libnginx-mod-http-echo)
#   NODE=node                       Node.js for the pass-mode origin (nodejs)
set -euo pipefail

# ----------------------------------------------------------------------
# the mock regional instances: NAME LATENCY_MS (ports are assigned in this
# order from EDGE_ORCH_DEMO_MOCK_PORT).  Change latencies here.
# ----------------------------------------------------------------------
MOCKS=(
    "cms_tokyo      40"
    "cms_frankfurt  60"
    "cms_virginia   120"
    "recs_dublin    80"
    "recs_oregon    150"
    "ads_singapore  30"
    "ads_frankfurt  50"
    "ads_virginia   70"
    "ads_mobile     45"
    "broken         20"       # answers 503 (upstreams recs_broken, cms_broken)
    "slow           2000"     # too slow for timeout=300ms (upstream ads_slow)
    "cms_flaky      90"       # answers 503 while $RUN/cms_flaky.down exists
)

usage() {
    echo "usage: $0 MODULE.so EDGE-ORCH-ROUTES-CLI" >&2
    exit 2
}

[ $# -eq 2 ] || usage

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }

EXAMPLES=$(cd "$(dirname "$0")" && pwd)
[ -f "$1" ] || die "module not found: $1 (run ./build.sh build)"
[ -x "$2" ] || die "routes CLI not found or not executable: $2 (run ./build.sh build)"
SO=$(abspath "$1")
CLI=$(abspath "$2")
NGINX=${NGINX:-/usr/sbin/nginx}
ECHO_SO=${EDGE_ORCH_DEMO_ECHO_SO:-/usr/lib/nginx/modules/ngx_http_echo_module.so}
PORT=${EDGE_ORCH_DEMO_PORT:-8080}
MOCK_PORT=${EDGE_ORCH_DEMO_MOCK_PORT:-18101}
KEEP=${EDGE_ORCH_DEMO_KEEP:-0}

command -v "$NGINX" >/dev/null 2>&1 || die "nginx not found: $NGINX"
[ -f "$ECHO_SO" ] || die "echo module not found: $ECHO_SO (apt-get install libnginx-mod-http-echo)"
command -v curl >/dev/null 2>&1 || die "curl not found (apt-get install curl)"
PY=""
command -v python3 >/dev/null 2>&1 && PY=python3
# Node.js runs the pass-mode origin; without it that section is skipped
if [ -z "${NODE:-}" ]; then
    NODE=$(command -v node || command -v nodejs || true)
elif ! command -v "$NODE" >/dev/null 2>&1; then
    NODE=""
fi

URL="http://127.0.0.1:$PORT/api/page/home"
URL_CACHED="http://127.0.0.1:$PORT/api/page/home-cached"
PURGE_URL="http://127.0.0.1:$PORT/_purge"
URL_PASS="http://127.0.0.1:$PORT/news/home"
URL_PASS_BODY="http://127.0.0.1:$PORT/news/home-body"
IPHONE_UA='Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'

# ----------------------------------------------------------------------
# output helpers
# ----------------------------------------------------------------------
if [ -t 1 ]; then
    B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' Y=$'\e[33m' R=$'\e[31m' N=$'\e[0m'
else
    B="" D="" G="" Y="" R="" N=""
fi

section() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }
say()     { printf '%s\n' "$*"; }
note()    { printf '%s%s%s\n' "$D" "$*" "$N"; }
# ctl ARGS: run the routes CLI, showing the command line
ctl()     { printf '%s$ edge-orch-routes' "$D"; printf ' %q' "$@"; printf '%s\n' "$N"
            "$RUN_CLI" "$@" 2>&1 | sed 's/^/    /'; }

# ----------------------------------------------------------------------
# run directory, clean-up
# ----------------------------------------------------------------------
RUN=$(mktemp -d "${TMPDIR:-/tmp}/edge-orch-demo.XXXX")
chmod 755 "$RUN"     # nginx workers (user nobody under root) read in here
MASTER=""
WORKERS=""
ORIGIN_PID=""

cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [ "$KEEP" = 1 ]; then
        if [ -n "$MASTER" ] && kill -0 "$MASTER" 2>/dev/null; then
            printf '\nnginx is still running (EDGE_ORCH_DEMO_KEEP=1): master pid %s\n' "$MASTER"
            printf '  try:   curl -si -H "X-Region: JP" %s\n' "$URL"
            printf '  cache: curl -si -H "X-Region: JP" %s\n' "$URL_CACHED"
            printf '  purge: curl -X PURGE -H "Surrogate-Key: cms" %s\n' "$PURGE_URL"
            printf '  route: %s put %s/routes cms JP cms_frankfurt\n' "$CLI" "$RUN"
            if [ -n "$ORIGIN_PID" ] && kill -0 "$ORIGIN_PID" 2>/dev/null; then
                printf '  pass:  curl -si -H "X-Region: JP" %s\n' "$URL_PASS"
                printf '  the origin (node) is still running too: pid %s\n' "$ORIGIN_PID"
                printf '  stop:  kill %s %s && rm -rf %s\n' "$MASTER" "$ORIGIN_PID" "$RUN"
            else
                printf '  stop:  kill %s && rm -rf %s\n' "$MASTER" "$RUN"
            fi
        fi
        printf 'run directory kept: %s\n' "$RUN"
        exit $rc
    fi
    if [ $rc -ne 0 ] && [ $rc -ne 130 ] && [ $rc -ne 143 ] \
       && [ -f "$RUN/logs/error.log" ]; then
        echo "demo: failed (exit $rc); problems in the nginx error log:" >&2
        grep -E '\[(warn|error|crit|alert|emerg)\]' "$RUN/logs/error.log" \
            | tail -n 15 | sed 's/^/    /' >&2 || true
    fi
    if [ -n "$ORIGIN_PID" ] && kill -0 "$ORIGIN_PID" 2>/dev/null; then
        kill -TERM "$ORIGIN_PID" 2>/dev/null || true
        for i in $(seq 1 30); do
            kill -0 "$ORIGIN_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$ORIGIN_PID" 2>/dev/null || true
    fi
    if [ -n "$MASTER" ] && kill -0 "$MASTER" 2>/dev/null; then
        kill -TERM "$MASTER" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$MASTER" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$MASTER" 2>/dev/null; then
            echo "demo: nginx master $MASTER did not stop, killing it" >&2
            kill -KILL "$MASTER" 2>/dev/null || true
            for i in $WORKERS; do
                kill -KILL "$i" 2>/dev/null || true
            done
        fi
    fi
    rm -rf "$RUN"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RUN/logs" "$RUN/tmp" "$RUN/data"
cp "$EXAMPLES"/data/*.json "$RUN/data/"
cp "$CLI" "$RUN/edge-orch-routes"    # a rebuild during the demo cannot break it
RUN_CLI="$RUN/edge-orch-routes"
ROUTES="$RUN/routes"

# ----------------------------------------------------------------------
# mock table -> ports, latencies, config
# ----------------------------------------------------------------------
declare -A MPORT MLAT
# the pass-mode origin (node) listens on the port after the mocks'
ORIGIN_PORT=$((MOCK_PORT + ${#MOCKS[@]}))
sed_args=(-e "s|@SO@|$SO|g" -e "s|@ECHO_SO@|$ECHO_SO|g"
          -e "s|@PREFIX@|$RUN|g" -e "s|@DATA@|$RUN/data|g"
          -e "s|@ROUTES@|$ROUTES|g" -e "s|@PORT@|$PORT|g"
          -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g")
i=0
for m in "${MOCKS[@]}"; do
    read -r name ms _ <<<"$m"
    MPORT[$name]=$((MOCK_PORT + i))
    MLAT[$name]=$ms
    sed_args+=(-e "s|@PORT_${name}@|${MPORT[$name]}|g"
               -e "s|@SLEEP_${name}@|$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))|g")
    i=$((i + 1))
done

sed "${sed_args[@]}" "$EXAMPLES/nginx.conf.in" >"$RUN/nginx.conf"
if sed 's/#.*//' "$RUN/nginx.conf" | grep -n '@[A-Za-z_]*@' >&2; then
    die "placeholders left in the generated nginx.conf (MOCKS table and nginx.conf.in disagree)"
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$PORT" "${MPORT[@]}")
[ -n "$NODE" ] && ports+=("$ORIGIN_PORT")
for p in "${ports[@]}"; do
    port_busy "$p" && die "127.0.0.1:$p is already in use; set EDGE_ORCH_DEMO_PORT / EDGE_ORCH_DEMO_MOCK_PORT"
done

# ----------------------------------------------------------------------
# the response summariser: no wall of JSON, one line per fragment
# ----------------------------------------------------------------------
cat >"$RUN/summarize.py" <<'PY'
import json, os, sys

body_file, hdr_file, data_dir, status, took, lat_spec = sys.argv[1:7]
lat = dict(kv.split("=") for kv in lat_spec.split(",") if kv)
raw = open(body_file, "rb").read()
hdrs = {}
for line in open(hdr_file, encoding="utf-8", errors="replace"):
    if ":" in line:
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()

print("   HTTP %s   X-Edge-Orch: %s" % (status, hdrs.get("x-edge-orch", "(none)")))
if "x-edge-orch-route" in hdrs:
    print("   routed:  %s" % hdrs["x-edge-orch-route"])

# with an edge_orch_zone: "Cache-Status: edge-orch/cms; hit; ttl=29, ..."
cache = {}
for member in hdrs.get("cache-status", "").split(","):
    name, _, params = member.strip().partition(";")
    if name.startswith("edge-orch/"):
        cache[name[len("edge-orch/"):]] = params.strip()

try:
    doc = json.loads(raw)
except ValueError as e:
    print("   body is not JSON (%s): %r" % (e, raw[:200]))
    sys.exit(0)

if "error" in doc:
    print("   body:    %s" % json.dumps(doc))
    print("   took %.3f s" % float(took))
    sys.exit(0)

def kb(n):
    return "%.1f KB" % (n / 1024.0)

def describe(name, frag):
    if not isinstance(frag, dict):
        return json.dumps(frag)[:60]
    if frag.get("source") == "fallback":
        return "fallback= from nginx.conf: " + json.dumps(frag, separators=(",", ":"))
    if "articles" in frag:
        a = frag["articles"]
        top = a[0]["headline"] if a else "-"
        if len(top) > 48:
            top = top[:47] + "…"
        return "%s, %d articles; top: \"%s\"" % (frag.get("edition_name", "?").split("— ")[-1], len(a), top)
    if "items" in frag:
        m = frag.get("model", {})
        return "%d recommendations, model %s %s" % (len(frag["items"]), m.get("name", "?"), m.get("version", "?"))
    if "slots" in frag:
        s = ", ".join("%s %s" % (x.get("advertiser"), x.get("size")) for x in frag["slots"][:2])
        more = len(frag["slots"]) - 2
        return "%d slots: %s%s" % (len(frag["slots"]), s, ", …" if more > 0 else "")
    return ", ".join(list(frag)[:5])

spent = []
for name in ("cms", "recs", "ads"):
    if name not in doc:
        print("   %-5s (left out of the document)" % name)
        continue
    frag = doc[name]
    who = frag.get("served_by") if isinstance(frag, dict) else None
    size = ""
    if who:
        path = os.path.join(data_dir, who + ".json")
        if os.path.exists(path):
            data = open(path, "rb").read()
            size = kb(len(data))
            if data not in raw:
                size += " (NOT byte-identical to data/%s.json!)" % who
        if who in lat:
            spent.append((who, int(lat[who])))
    if cache:
        what = "Cache-Status: " + cache.get(name, "(none)")
    else:
        what = describe(name, frag)
    print("   %-5s <- %-14s %-8s %s" % (name, who or "(nginx)", size, what))

t = float(took)

if cache:
    # who did this request wait for? fetches on its own path (a miss it
    # made itself, or an uncacheable one); collapsed ones waited for
    # another request's fetch; hits and stale copies for nobody
    outcome = dict(p.strip().partition("=")[::2]
                   for p in hdrs.get("x-edge-orch", "").split(";") if "=" in p)
    waited, failed = [], []
    for name in ("cms", "recs", "ads"):
        c = cache.get(name, "")
        frag = doc.get(name)
        who = frag.get("served_by") if isinstance(frag, dict) else None
        if outcome.get(name, "").startswith("stale:"):
            failed.append("%s (%s)" % (who or name, outcome[name]))
        elif (c.startswith("fwd=miss") and "collapsed" not in c) or c.startswith("fwd=request"):
            waited.append("%s %s ms" % (who or name, lat.get(who, "?")))
    took_s = "%.1f ms" % (t * 1000) if t < 0.01 else "%.3f s" % t
    if waited:
        line = "   took %s: waited for %s%s" % (
            took_s, ", ".join(waited), " (in parallel)" if len(waited) > 1 else "")
    elif failed:
        line = "   took %s: the fetch from %s failed, the last good copy was served" % (
            took_s, ", ".join(failed))
    else:
        line = "   took %s: nothing fetched on this request's path" % took_s
    print(line)
    if os.environ.get("SUMMARY_TAGS") and "surrogate-key" in hdrs:
        import textwrap
        tags = hdrs["surrogate-key"].split()
        print("   Surrogate-Key (the union of the fragments' and the page's tags, %d):" % len(tags))
        for l in textwrap.wrap(" ".join(tags), 74, break_on_hyphens=False):
            print("     " + l)
    sys.exit(0)

line = "   took %.3f s for %s bytes" % (t, len(raw))
all_ok = all(p.strip().endswith("=ok")
             for p in hdrs.get("x-edge-orch", "x").split(";"))
if all_ok and len(spent) > 1:
    total = sum(ms for _, ms in spent) / 1000.0
    slowest = max(ms for _, ms in spent) / 1000.0
    line += "; the %d upstreams' latencies add up to %.3f s (slowest %.3f s): fetched in parallel" % (
        len(spent), total, slowest)
print(line)
PY

LAT_SPEC=""
for name in "${!MLAT[@]}"; do LAT_SPEC="$LAT_SPEC$name=${MLAT[$name]},"; done

# request LABEL REGION [USER-AGENT]          (REQUEST_URL=... for another URL)
request() {
    local label=$1 region=$2 ua=${3:-} out status took url=${REQUEST_URL:-$URL}
    local args=(-s -m 10 -o "$RUN/body" -D "$RUN/headers" -w '%{http_code} %{time_total}')
    [ -n "$region" ] && args+=(-H "X-Region: $region")
    [ -n "$ua" ] && args+=(-A "$ua")
    printf '\n%s-- %s%s\n' "$B" "$label" "$N"
    if [ -n "$ua" ]; then
        note "   curl -H 'X-Region: $region' -A '${ua:0:40}…' $url"
    else
        note "   curl -H 'X-Region: $region' $url"
    fi
    out=$(curl "${args[@]}" "$url") || die "request failed (curl exit $?)"
    read -r status took <<<"$out"
    if [ -n "$PY" ]; then
        "$PY" "$RUN/summarize.py" "$RUN/body" "$RUN/headers" "$RUN/data" \
              "$status" "$took" "$LAT_SPEC"
    else
        printf '   HTTP %s   %s\n' "$status" "$(grep -i '^x-edge-orch:' "$RUN/headers" | tr -d '\r')"
        grep -i '^cache-status:' "$RUN/headers" | tr -d '\r' \
            | sed -e 's/^/   /' -e 's/, /,\n                 /g' || true
        printf '   took %s s; body (first 300 bytes):\n' "$took"
        head -c 300 "$RUN/body" | sed 's/^/     /'; echo
    fi
}

# cached LABEL REGION [USER-AGENT]: the same through the edge cache
cached() { REQUEST_URL=$URL_CACHED request "$@"; }

# mock_requests NAME: requests the mock instance NAME has answered so far
# (lines in mocks.log with its port; log_format mock: "$time_local $port ...")
mock_requests() {
    awk -v p="${MPORT[$1]}" '$3 == p { n++ } END { print n + 0 }' "$RUN/logs/mocks.log"
}

# purge CURL-ARGS...: a request to /_purge, showing the command and answer
purge() {
    local out status
    local a
    printf '%s$ curl' "$D"
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=-]+$ ]]; then printf ' %s' "$a"; else printf " '%s'" "$a"; fi
    done
    printf ' %s%s\n' "$PURGE_URL" "$N"
    out=$(curl -s -m 5 -w '\n%{http_code}' "$@" "$PURGE_URL") || die "purge failed (curl exit $?)"
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    printf '    HTTP %s %s\n' "$status" "${out%$'\n'}"
}

# pass_request LABEL REGION URL: a page the origin rendered from the edge's
# data: the response, a few lines of the HTML, how the document reached the
# origin (its log line) and which mock APIs were asked meanwhile
pass_request() {
    local label=$1 region=$2 url=$3 out status took m n fr why olog sha doc
    local olines
    local -A before
    local moved=() files=() asked=0
    for m in "${!MPORT[@]}"; do before[$m]=$(mock_requests "$m"); done
    olines=$(wc -l <"$RUN/logs/origin.log")
    printf '\n%s-- %s%s\n' "$B" "$label" "$N"
    note "   curl -H 'X-Region: $region' $url"
    out=$(curl -s -m 10 -o "$RUN/body" -D "$RUN/headers" -w '%{http_code} %{time_total}' \
               -H "X-Region: $region" "$url") || die "request failed (curl exit $?)"
    read -r status took <<<"$out"
    olog=$(tail -n +"$((olines + 1))" "$RUN/logs/origin.log" | tail -n 1)
    sleep 0.3     # a background refresh of a stale copy reaches mocks.log too

    printf '   HTTP %s   Content-Type: %s   %s bytes of HTML, took %s ms\n' "$status" \
        "$(resp_header content-type)" "$(wc -c <"$RUN/body")" \
        "$(awk -v t="$took" 'BEGIN { printf "%.1f", t * 1000 }')"
    printf '   edge:   X-Edge-Orch: %s   cache: %s\n' \
        "$(resp_header x-edge-orch)" "$(resp_header x-edge-orch-cache)"
    printf '   page:   <title>%s</title>\n' \
        "$(sed -n 's:.*<title>\(.*\)</title>.*:\1:p' "$RUN/body" | unhtml)"
    grep -o '<li>.*</li>' "$RUN/body" | sed 's:</*li>::g' | unhtml \
        | awk 'NR <= 3 { printf "             %d. %s\n", NR, $0 }'
    grep -o 'rendered from the edge payload[^<]*' "$RUN/body" | unhtml | sed 's/^/           /'

    # the origin's log line (examples/origin/server.js):
    #   "GET /news/home: payload via=header json=N base64=N sha256=H ..."
    #   "POST /news/home-body: payload via=body json=N method=GET sha256=H ..."
    sha=""
    if [[ $olog =~ via=header\ json=([0-9]+)\ base64=([0-9]+)\ sha256=([0-9a-f]+) ]]; then
        printf '   origin: got the document in the X-Edge-Orch-Payload header: %s bytes of JSON, %s in base64\n' \
            "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
        sha=${BASH_REMATCH[3]}
    elif [[ $olog =~ (POST\ [^:]*):\ payload\ via=body\ json=([0-9]+)\ method=([A-Z]+)\ sha256=([0-9a-f]+) ]]; then
        printf '   origin: got "%s" with the document as its body: %s bytes of JSON\n' \
            "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
        printf '           (%s in base64: over header_max=8k), X-Edge-Orch-Method: %s\n' \
            "$(( (BASH_REMATCH[2] + 2) / 3 * 4 ))" "${BASH_REMATCH[3]}"
        sha=${BASH_REMATCH[4]}
    else
        printf '   origin: %s\n' "${olog:-(the origin logged nothing for this request)}"
    fi

    # the document rebuilt from the data files the mocks serve (as named in
    # the page's "served by"): what /api/page/home would send this reader
    if [ -n "$sha" ] && command -v sha256sum >/dev/null 2>&1; then
        for fr in cms recs ads; do
            m=$(grep -o 'served by [^<]*' "$RUN/body" | grep -o "\b${fr}_[a-z_]*" | awk 'NR == 1')
            [ -n "$m" ] && files+=("$fr=$m")
        done
        doc=$( { printf '{'; n=0
                 for fr in "${files[@]}"; do
                     [ $n = 0 ] || printf ','
                     printf '"%s":' "${fr%%=*}"; cat "$RUN/data/${fr#*=}.json"; n=1
                 done; printf '}'; } | sha256sum | cut -c1-16)
        if [ "$doc" = "$sha" ]; then
            say "           = {\"cms\":…,\"recs\":…,\"ads\":…} of data/{$(printf '%s\n' "${files[@]#*=}" | paste -sd, -)}.json, byte for byte"
        else
            say "           ${Y}(not the document the mocks' data files make: sha256 $sha…, expected $doc…)${N}"
        fi
    fi

    # the mocks' request counts: a cached fragment costs no API call, and
    # the origin makes none of its own
    for m in "${!MPORT[@]}"; do
        n=$(( $(mock_requests "$m") - ${before[$m]} ))
        [ "$n" -gt 0 ] || continue
        fr=${m%%_*}
        case $(cache_of "$fr") in
            STALE) why="$fr was stale: refreshed in the background" ;;
            MISS)  why="$fr was not cached" ;;
            *)     why="$fr=$(cache_of "$fr")" ;;
        esac
        moved+=("$m +$n ($why)")
        asked=$((asked + n))
    done
    if [ $asked = 0 ]; then
        say "   APIs:   ${G}the mocks saw no request: the fragments came from the edge cache, the origin called no API${N}"
    else
        say "   APIs:   the mocks saw $asked, all from nginx: $(printf '%s, ' "${moved[@]}" | sed 's/, $//')"
        say "           the origin called no API"
    fi
}
resp_header() { grep -i "^$1:" "$RUN/headers" | awk 'NR == 1' | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }
# cache_of FRAGMENT: its member of X-Edge-Orch-Cache ($edge_orch_cache_status)
cache_of() { resp_header x-edge-orch-cache | tr ';' '\n' | sed -n "s/^ *$1=//p"; }
# unhtml: the entities server.js escapes, back to text
unhtml() { sed -e 's/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g' -e "s/&#39;/'/g" -e 's/&amp;/\&/g'; }

cli() { "$RUN_CLI" "$@"; }
generation() { cli info "$ROUTES" | sed -n 's/^generation: //p'; }
worker_pids() { pgrep -P "$MASTER" | sort -n | tr '\n' ' '; }

# ----------------------------------------------------------------------
section "1. Routing table: compile examples/routes.json into LMDB"
# ----------------------------------------------------------------------
owner=()
[ "$(id -u)" = 0 ] && owner=(--owner nobody:nogroup)   # workers run as nobody
ctl compile "$EXAMPLES/routes.json" "$ROUTES" "${owner[@]}"
[ -f "$ROUTES/data.mdb" ] || die "the CLI did not create $ROUTES/data.mdb"
if [ "$(id -u)" = 0 ] && [ "$(stat -c %U "$ROUTES/lock.mdb")" != nobody ]; then
    chown -R nobody:nogroup "$ROUTES"     # older CLI without --owner
fi
note "   what nginx will pick (the CLI walks the same lookup chain as the module):"
for q in "cms JP" "cms DE" "cms US" "cms BR" "recs JP" "ads TW"; do
    read -r svc reg <<<"$q"
    printf '   %-5s %-3s -> %s\n' "$svc" "$reg" "$(cli resolve "$ROUTES" "$svc" "$reg" -q)"
done
printf '   %-5s %-3s -> %s   (iPhone User-Agent)\n' ads US \
    "$(cli resolve "$ROUTES" ads US --ua "$IPHONE_UA" -q)"

# ----------------------------------------------------------------------
section "2. Start nginx (orchestrator on 127.0.0.1:$PORT, ${#MOCKS[@]} mock instances on 127.0.0.1:$MOCK_PORT-$((MOCK_PORT + ${#MOCKS[@]} - 1)))"
# ----------------------------------------------------------------------
say "   run dir: $RUN"
"$NGINX" -t -p "$RUN" -c "$RUN/nginx.conf" 2>&1 | sed 's/^/   /'
"$NGINX" -p "$RUN" -c "$RUN/nginx.conf"
for i in $(seq 1 50); do
    [ -s "$RUN/nginx.pid" ] && MASTER=$(cat "$RUN/nginx.pid")
    [ -n "$MASTER" ] && curl -s -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
    sleep 0.1
done
[ -n "$MASTER" ] || die "nginx did not write $RUN/nginx.pid"
curl -s -m 1 -o /dev/null "http://127.0.0.1:$PORT/healthz" || die "nginx does not answer on 127.0.0.1:$PORT"
WORKERS=$(worker_pids)
say "   nginx master pid $MASTER, workers: $WORKERS"

# the framework origin for pass mode (section 10): Node.js, 127.0.0.1 only
ORIGIN_NOTE=""
if [ -z "$NODE" ]; then
    ORIGIN_NOTE="node is not installed (apt-get install nodejs)"
else
    "$NODE" "$EXAMPLES/origin/server.js" "$ORIGIN_PORT" >"$RUN/logs/origin.log" 2>&1 &
    ORIGIN_PID=$!
    echo "$ORIGIN_PID" >"$RUN/origin.pid"
    for i in $(seq 1 50); do
        curl -s -m 1 -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/" && break
        kill -0 "$ORIGIN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if curl -s -m 1 -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/"; then
        say "   pass-mode origin: $(basename "$NODE") examples/origin/server.js on 127.0.0.1:$ORIGIN_PORT, pid $ORIGIN_PID ($("$NODE" --version))"
    else
        ORIGIN_NOTE="the origin did not start on 127.0.0.1:$ORIGIN_PORT: $(tail -n 1 "$RUN/logs/origin.log")"
        say "   ${Y}$ORIGIN_NOTE${N}"
    fi
fi
note "   mock latencies: $(for m in "${MOCKS[@]:0:9}"; do read -r n ms _ <<<"$m"; printf '%s %sms, ' "$n" "$ms"; done | sed 's/, $//')"

# one untimed request per worker so the first timed one is not a cold start
for i in 1 2 3 4; do curl -s -m 5 -o /dev/null -H 'X-Region: US' "$URL" || true; done

# ----------------------------------------------------------------------
section "3. One URL, four readers: the page is assembled from the region's nearest instances"
# ----------------------------------------------------------------------
request "Reader in Japan (X-Region: JP -> group apac)" JP
request "Reader in Germany (X-Region: DE -> group eu)" DE
request "Reader in the US (X-Region: US -> group na)" US
request "Reader in the US on an iPhone (device class mobile)" US "$IPHONE_UA"

# ----------------------------------------------------------------------
section "4. Live route change: send Japan's cms traffic to Frankfurt, no reload"
# ----------------------------------------------------------------------
gen0=$(generation)
pids0="$MASTER / $(worker_pids)"
ctl put "$ROUTES" cms JP cms_frankfurt
gen1=$(generation)
say "   routes generation: $gen0 -> $gen1"
ctl diff "$EXAMPLES/routes.json" "$ROUTES" || true
request "Reader in Japan, right after the change" JP
ctl rollback "$ROUTES"
say "   routes generation: $gen1 -> $(generation)"
request "Reader in Japan, after the rollback" JP
pids1="$MASTER / $(worker_pids)"
say ""
say "   nginx master / worker pids before: $pids0"
say "   nginx master / worker pids after:  $pids1"
if [ "$pids0" = "$pids1" ]; then
    say "   ${G}same processes: no reload, no restart; every worker read the new table on its next request${N}"
else
    say "   ${R}the nginx processes changed!${N}"
fi
note "   nginx error log: a worker loads a new generation on its next request"
grep -o 'routing table "[^"]*" generation [0-9]* loaded.*' "$RUN/logs/error.log" \
    | sed -e 's/, client:.*//' -e "s|$ROUTES|$(basename "$RUN")/routes|" | tail -n 4 | sed 's/^/     /' || true

# ----------------------------------------------------------------------
section "5. Upstream failures: the page still renders"
# ----------------------------------------------------------------------
say "   ${Y}5a. recs for everyone outside the EU goes to recs_broken, which answers 503${N}"
ctl put "$ROUTES" recs '*' recs_broken
request "Reader in the US: recs is replaced by its fallback=" US
request "Reader in Germany: still routed to recs_dublin, unaffected" DE
ctl rollback "$ROUTES"

say ""
say "   ${Y}5b. ads outside apac/eu go to ads_slow, which needs ${MLAT[slow]} ms (timeout=300ms, optional)${N}"
ctl put "$ROUTES" ads '*' ads_slow
request "Reader in the US: ads is left out, the page does not wait for it" US
ctl rollback "$ROUTES"

say ""
say "   ${Y}5c. cms (required, no fallback) for the US goes to a broken instance${N}"
ctl put "$ROUTES" cms US cms_broken
request "Reader in the US: a required fragment failed -> 502 for the whole page" US
ctl rollback "$ROUTES"
request "Reader in the US, after the rollback" US

# ----------------------------------------------------------------------
section "6. Edge cache: the same page through edge_orch zone=fragments"
# ----------------------------------------------------------------------
note "   location /api/page/home-cached: cms and ads ttl=30s stale=5m, recs ttl=30s;"
note "   the cache key is fragment + upstream + URI, shared by both nginx workers"
cached "Reader in Japan, first request: every fragment is a miss, fetched and stored" JP
SUMMARY_TAGS=1 cached "Reader in Japan, again: every fragment is a hit, no upstream is contacted" JP

# ----------------------------------------------------------------------
section "7. Miss storm: 50 readers in Germany at once, nothing cached for them yet"
# ----------------------------------------------------------------------
STORM=50
storm_mocks=(cms_frankfurt recs_dublin ads_frankfurt)    # group eu
declare -A before
for m in "${storm_mocks[@]}"; do before[$m]=$(mock_requests "$m"); done
storm_args=(-s -m 10 -Z --parallel-immediate --parallel-max "$STORM" -H 'X-Region: DE'
            -w '%{http_code} %header{cache-status}\n')
for i in $(seq 1 "$STORM"); do storm_args+=(-o /dev/null "$URL_CACHED"); done
note "   one curl, $STORM transfers opened at once (--parallel --parallel-immediate):"
note "   curl -Z -H 'X-Region: DE' $URL_CACHED  (x$STORM)"
t0=$(date +%s%N)
curl "${storm_args[@]}" >"$RUN/storm" 2>/dev/null || true
t1=$(date +%s%N)
say "   $(grep -c '^200 ' "$RUN/storm" || true) of $STORM answers were HTTP 200; all $STORM took $(( (t1 - t0) / 1000000 )) ms together"
say "   requests that reached the mocks during the storm (lines added to logs/mocks.log):"
fetches=0
for m in "${storm_mocks[@]}"; do
    n=$(( $(mock_requests "$m") - ${before[$m]} ))
    fetches=$((fetches + n))
    printf '     %-14s %d\n' "$m" "$n"
done
if [ "$fetches" = "${#storm_mocks[@]}" ]; then
    say "   ${G}$STORM requests -> 1 upstream fetch per fragment ($fetches in all, not $((STORM * ${#storm_mocks[@]})))${N}"
else
    say "   ${Y}$STORM requests -> $fetches upstream fetches for ${#storm_mocks[@]} fragments${N}"
fi
note "   Cache-Status members, counted over the $STORM answers (ttl= left out):"
if grep -q 'edge-orch/' "$RUN/storm"; then
    sed -n 's/^[0-9]* //p' "$RUN/storm" | tr ',' '\n' | sed -e 's/^ *//' -e 's/; ttl=-\{0,1\}[0-9]*//' \
        | grep . | sort | uniq -c | sort -k2,2 -k1,1n \
        | awk '{ n = $1; $1 = ""; printf "     %3d x%s\n", n, $0 }'
    note "   one answer's complete header:"
    sed -n '/collapsed/{s/^[0-9]* //p;q}' "$RUN/storm" \
        | sed -e 's/^/     Cache-Status: /' -e 's/, /,\n                   /g'
else
    say "     (this curl cannot print response headers with -w: curl 7.84 or newer needed)"
fi

# ----------------------------------------------------------------------
section "8. Purge by tag: the fragments carrying a tag, in every worker, at once"
# ----------------------------------------------------------------------
say "   ${Y}8a. the world story art-20261201-wld-0102 is on every edition's front page;${N}"
say "   ${Y}    an editor corrects it, the CMS purges its tag${N}"
purge -X PURGE -H 'Surrogate-Key: article:art-20261201-wld-0102'
cached "Reader in Japan: cms (Tokyo edition) is fetched again, recs and ads are still hits" JP
cached "Reader in Germany: the Frankfurt edition carries the story too" DE

say ""
say "   ${Y}8b. soft purge of the ads: marked stale instead of removed${N}"
purge -X PURGE -d '{"tags":["ads"],"soft":true}'
cached "Reader in Japan: ads served stale at once, one background refresh runs" JP
sleep 0.3   # the refresh takes ads_singapore's ${MLAT[ads_singapore]} ms
cached "Reader in Japan, a moment later: ads is a fresh hit again" JP

# ----------------------------------------------------------------------
section "9. Stale-if-error: the CMS fails, readers get its last good copy"
# ----------------------------------------------------------------------
note "   cms_flaky answers with Cache-Control: max-age=1, stale-while-revalidate=0:"
note "   fresh for 1 s (less than ttl=30s), then its copy is only served if a fetch fails"
ctl put "$ROUTES" cms BR cms_flaky
cached "Reader in Brazil (group na, cms now routed to cms_flaky): cms is fetched and stored" BR
touch "$RUN/cms_flaky.down"
say ""
say "   ${Y}cms_flaky goes down: it answers 503 from now on; wait 1.2 s for its copy to expire${N}"
sleep 1.2
flaky0=$(mock_requests cms_flaky)
cached "Reader in Brazil: the fetch gets a 503, the stale copy is served instead (cms=stale:status)" BR
say ""
say "   5 more readers right after it:"
for i in 1 2 3 4 5; do
    curl -s -m 5 -o /dev/null -H 'X-Region: BR' -w '%{http_code} X-Edge-Orch: %header{x-edge-orch}\n' "$URL_CACHED" || true
done | sort | uniq -c | sed 's/^ */     /; s/^\(     [0-9]*\) /\1 x HTTP /'
asked=$(( $(mock_requests cms_flaky) - flaky0 ))
[ "$asked" = 1 ] && asked="once" || asked="$asked times"
say "   6 readers during the outage, and cms_flaky was asked $asked"
note "   (after a failed fetch, requests get the same outcome for 1 s without asking the upstream)"
rm -f "$RUN/cms_flaky.down"
say ""
say "   ${Y}cms_flaky is back${N}"
sleep 1.1
cached "Reader in Brazil: cms is fetched again and stored, the page is fresh" BR
ctl rollback "$ROUTES"

# ----------------------------------------------------------------------
section "10. Pass mode: the framework renders from the edge's data"
# ----------------------------------------------------------------------
if [ -n "$ORIGIN_NOTE" ] || [ -z "$ORIGIN_PID" ]; then
    say "   ${Y}skipped: ${ORIGIN_NOTE:-no origin}${N}"
else
    note "   location /news/home: the same three fragments, from the same cache entries as"
    note "   /api/page/home-cached; then edge_orch_pass @origin header_max=12k hands the"
    note "   document to the framework's server (examples/origin/server.js, Node.js, on"
    note "   127.0.0.1:$ORIGIN_PORT), which renders the HTML from it instead of calling the APIs"
    pass_request "Reader in Japan: the HTML page, rendered by the origin" JP "$URL_PASS"
    pass_request "Reader in Germany" DE "$URL_PASS"
    say ""
    say "   ${Y}a document over the header limit: /news/home-body has the default header_max=8k${N}"
    pass_request "Reader in Japan: the same page, the document travels as a POST body" JP "$URL_PASS_BODY"
fi

# ----------------------------------------------------------------------
section "11. What nginx logged"
# ----------------------------------------------------------------------
note "   access log (log_format edge_orch in nginx.conf.in), last 8 lines:"
tail -n 8 "$RUN/logs/access.log" | sed 's/^/     /'
note "   fragment warnings from the error log:"
grep -o 'edge_orch: fragment .*' "$RUN/logs/error.log" | sed 's/, client:.*//' \
    | tail -n 6 | sed 's/^/     /' || true
note "   cache log (logs/cache.log): the purges, and the last 4 requests for /api/page/home-cached:"
{ grep ' "PURGE ' "$RUN/logs/cache.log" || true
  grep ' "GET /api/page/home-cached ' "$RUN/logs/cache.log" | tail -n 4; } | sed 's/^/     /'
if [ -s "$RUN/logs/pass.log" ]; then
    note "   pass log (logs/pass.log): the pages handed to the origin"
    sed 's/^/     /' "$RUN/logs/pass.log"
fi

section "Done"
if [ "$KEEP" = 1 ]; then
    say "   logs: $RUN/logs/{access,cache,error,mocks,pass,origin}.log"
else
    if [ -n "$ORIGIN_PID" ]; then
        say "   stopping nginx (pid $MASTER) and the origin (pid $ORIGIN_PID), removing $RUN"
    else
        say "   stopping nginx (pid $MASTER) and removing $RUN"
    fi
    say "   (EDGE_ORCH_DEMO_KEEP=1 keeps nginx running and the logs in place)"
fi
