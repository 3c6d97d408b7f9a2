# Shared-memory fragment cache (edge_orch_zone): miss/hit, ttl expiry,
# stale-while-revalidate, stale-if-error, failure hold-down, Cache-Control
# and Set-Cookie, isolation by upstream and key=, LRU eviction in a tiny
# zone, max_fragment, zone content kept across a reload.
#
# Every block starts a fresh nginx (empty zone).  The mock upstream counts
# its own fetches in a lua_shared_dict: /count?k=<uri> returns the number
# of fetches of one mock uri, /counts all of them ("uri=n" sorted, one a
# line).  Its body is {"n":<fetch number>} so a response shows which fetch
# it comes from.  Mock query arguments: cc=<Cache-Control> (repeatable),
# cookie=1 (Set-Cookie), status=<code>, size=<pad bytes>, sleep=<s> (every
# fetch), sleep2=<s> (every fetch but the first), bad2=1 (every fetch but
# the first answers 200 with invalid JSON), byhost=1 (count and report per
# Host, i.e. per upstream name).  /break?k=<uri> makes that uri answer
# 503 from then on; /sleep?t=<s> waits.  Blocks titled "regression:"
# reproduce defects these tests found (described in their comments); they
# are fixed and the blocks keep them fixed.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup(lua => 1);

# a cache test must not see the entries of a previous repetition
repeat_each(1);
workers(2);
master_on();
no_shuffle();
worker_connections(1024);

my $table = <<'_JSON_';
{
  "schema": 1,
  "default_group": "na",
  "groups": { "DE": "eu", "FR": "eu", "US": "na" },
  "routes": [
    { "service": "cms", "region": "eu", "upstream": "cms_eu" },
    { "service": "cms", "region": "*", "upstream": "cms_us" }
  ]
}
_JSON_

$ENV{TEST_NGINX_ROUTES} = routes_dir($table);

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
lua_shared_dict mock 1m;
edge_orch_zone name=c:1m;
edge_orch_timeout 5s;
upstream mock { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location /_frag/ {
        content_by_lua_block {
            local d = ngx.shared.mock
            local a = ngx.req.get_uri_args()
            local key = ngx.var.uri
            if a.byhost then key = ngx.var.host .. key end
            local n = d:incr(key, 1, 0)
            local s = tonumber(a.sleep or (n > 1 and a.sleep2) or 0)
            if s > 0 then ngx.sleep(s) end
            if d:get("broken:" .. ngx.var.uri) or a.status then
                ngx.status = tonumber(a.status or 503)
                ngx.print('{"down":true}')
                return
            end
            if a.cc then ngx.header["Cache-Control"] = a.cc end
            if a.bad2 and n > 1 then
                ngx.print('<html>oops</html>')
                return
            end
            if a.cookie then ngx.header["Set-Cookie"] = "s=" .. n end
            local body = '{"n":' .. n
            if a.byhost then
                body = body .. ',"host":"' .. ngx.var.host .. '"'
            end
            if a.size then
                body = body .. ',"pad":"' .. string.rep("x", tonumber(a.size)) .. '"'
            end
            ngx.print(body .. '}')
        }
    }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
location = /count {
    content_by_lua_block { ngx.print(ngx.shared.mock:get(ngx.var.arg_k) or 0) }
}
location = /counts {
    content_by_lua_block {
        local d = ngx.shared.mock
        local keys = d:get_keys(0)
        table.sort(keys)
        for _, k in ipairs(keys) do
            if not k:find("^broken:") then ngx.say(k, "=", d:get(k)) end
        end
    }
}
location = /break {
    content_by_lua_block {
        ngx.shared.mock:set("broken:" .. ngx.var.arg_k, true)
        ngx.print("broken")
    }
}
location = /sleep { echo_sleep $arg_t; echo -n slept; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: miss, then hit: the upstream is asked once
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/one upstream=mock ttl=10s;
    add_header X-Cache $edge_orch_cache_status always;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /count?k=/_frag/one"]
--- response_body eval
['{"a":{"n":1}}', '{"a":{"n":1}}', '{"a":{"n":1}}', '1']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored
X-Cache: a=MISS
X-Edge-Orch: a=ok",
"Cache-Status: edge-orch/a; hit; ttl=([5-9]|10)
X-Cache: a=HIT
X-Edge-Orch: a=ok",
"Cache-Status: edge-orch/a; hit; ttl=([5-9]|10)
X-Cache: a=HIT
X-Edge-Orch: a=ok",
""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 2: several fragments: each has its own entry and Cache-Status member
b has no ttl= (coalescing only): it is fetched every time, and it still
has its member.
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/two-a upstream=mock ttl=10s;
    edge_orch_fragment b /_frag/two-b upstream=mock;
    edge_orch_fragment c /_frag/two-c upstream=mock ttl=10s optional;
    add_header X-Cache $edge_orch_cache_status always;
}
--- request eval
["GET /p", "GET /p", "GET /counts"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1},"c":{"n":1}}',
 '{"a":{"n":1},"b":{"n":2},"c":{"n":1}}',
 "/_frag/two-a=1\n/_frag/two-b=2\n/_frag/two-c=1\n"]
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200(; stored)?, edge-orch/c; fwd=miss; fwd-status=200; stored
X-Cache: a=MISS; b=MISS; c=MISS",
"Cache-Status: edge-orch/a; hit; ttl=([5-9]|10), edge-orch/b; fwd=miss; fwd-status=200(; stored)?, edge-orch/c; hit; ttl=([5-9]|10)
X-Cache: a=HIT; b=MISS; c=HIT",
""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 3: a location without zone= neither uses nor reports the cache
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/three upstream=mock ttl=10s;
}
location = /nocache {
    edge_orch;
    edge_orch_fragment a /_frag/three upstream=mock ttl=10s;
}
--- request eval
["GET /p", "GET /nocache", "GET /p", "GET /count?k=/_frag/three"]
--- response_body eval
['{"a":{"n":1}}', '{"a":{"n":2}}', '{"a":{"n":1}}', '2']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored",
 "Cache-Status: \nX-Edge-Orch: a=ok",
 "Cache-Status: edge-orch/a; hit; ttl=([5-9]|10)",
 ""]
--- no_error_log
[error]
[alert]



=== TEST 4: ttl expiry: after ttl= (no stale=) the next request fetches again
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/ttl upstream=mock ttl=1s;
    add_header X-Cache $edge_orch_cache_status always;
}
--- request eval
["GET /p", "GET /p", "GET /sleep?t=1.3", "GET /p", "GET /p",
 "GET /count?k=/_frag/ttl"]
--- response_body eval
['{"a":{"n":1}}', '{"a":{"n":1}}', 'slept', '{"a":{"n":2}}', '{"a":{"n":2}}',
 '2']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/a; hit; ttl=0",
 "",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored
X-Cache: a=MISS",
 "Cache-Status: edge-orch/a; hit; ttl=0",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 5: stale-while-revalidate: stale is served at once, refreshed in the background
The refresh (the mock's second fetch) takes 1 s; the stale response is
produced before it ends ($request_time at header time), the refreshed body
is served afterwards.  ttl=2s and 3.2 s of sleep: 1.2 s stale, ttl=-1.
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/swr?sleep2=1' upstream=mock ttl=2s stale=30s;
    add_header X-Cache $edge_orch_cache_status always;
    add_header X-Resp-Time $request_time always;
}
--- request eval
["GET /p", "GET /sleep?t=1.6", "GET /sleep?t=1.6", "GET /p", "GET /p",
 "GET /count?k=/_frag/swr"]
--- response_body eval
['{"a":{"n":1}}', 'slept', 'slept', '{"a":{"n":1}}', '{"a":{"n":2}}', '2']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored",
 "",
 "",
 "Cache-Status: edge-orch/a; hit; fwd=stale; ttl=-[12]
X-Cache: a=STALE
X-Edge-Orch: a=ok
X-Resp-Time: 0\\.[0-7]\\d\\d",
 "Cache-Status: edge-orch/a; hit; ttl=[01]
X-Cache: a=HIT",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 6: stale-while-revalidate under concurrency: exactly one refresh for 20 stale requests
--- init
my $r = EdgeOrch::http_get('/p');
Test::More::is($r->{body}, '{"a":{"n":1}}', "TEST 6 init: first fetch");
select undef, undef, undef, 1.3;
my @res = EdgeOrch::http_parallel([('/p') x 20], timeout => 20);
my $bad = grep {
    !($_->{status} == 200 && $_->{body} eq '{"a":{"n":1}}'
      && ($_->{headers}{'cache-status'} // '') =~ /^edge-orch\/a; hit; fwd=stale; ttl=-?\d+$/)
} @res;
Test::More::is($bad, 0, "TEST 6 init: 20 concurrent stale responses")
    or Test::More::diag(join "\n", map { "$_->{status} $_->{body} "
        . ($_->{headers}{'cache-status'} // '-') } @res);
if (!$ENV{TEST_NGINX_USE_VALGRIND}) {
    my @slow = grep { !defined $_->{time} || $_->{time} > 0.9 } @res;
    Test::More::is(scalar @slow, 0,
                   "TEST 6 init: stale answers do not wait for the 1.5 s refresh")
        or Test::More::diag(join ' ', map { $_->{time} // 'undef' } @res);
}
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/swr?sleep2=1.5' upstream=mock ttl=1s stale=30s;
}
--- request eval
["GET /p", "GET /count?k=/_frag/swr"]
--- response_body eval
['{"a":{"n":2}}', '2']
--- response_headers_like eval
["Cache-Status: edge-orch/a; hit; ttl=0", ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 7: stale-if-error: a failing fetch serves the stale body ("stale:status"), then the key is held down for 1 s
stale-while-revalidate=0 from the upstream leaves only the stale-if-error
window, so the expired entry is fetched in the foreground.
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/sie?cc=stale-while-revalidate=0' upstream=mock ttl=1s stale=30s 'fallback={"fb":1}';
    add_header X-Cache $edge_orch_cache_status always;
}
--- request eval
["GET /p", "GET /break?k=/_frag/sie", "GET /sleep?t=1.2", "GET /p", "GET /p",
 "GET /count?k=/_frag/sie"]
--- response_body eval
['{"a":{"n":1}}', 'broken', 'slept', '{"a":{"n":1}}', '{"a":{"n":1}}', '2']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored
X-Edge-Orch: a=ok",
 "",
 "",
 "Cache-Status: edge-orch/a; hit; fwd=stale; ttl=-?\\d+
X-Cache: a=STALE
X-Edge-Orch: a=stale:status",
 "Cache-Status: edge-orch/a; hit; fwd=stale; ttl=-?\\d+
X-Cache: a=STALE
X-Edge-Orch: a=stale:status",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 8: stale-if-error needs a body within the window: after ttl + stale the fallback is used
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/siex upstream=mock ttl=1s stale=1s 'fallback={"fb":1}';
}
--- request eval
["GET /p", "GET /break?k=/_frag/siex", "GET /sleep?t=2.3", "GET /p",
 "GET /count?k=/_frag/siex"]
--- response_body eval
['{"a":{"n":1}}', 'broken', 'slept', '{"a":{"fb":1}}', '2']
--- response_headers_like eval
["X-Edge-Orch: a=ok", "", "",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=503
X-Edge-Orch: a=fallback:status",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 9: stale-if-error also covers a timed-out and an invalid fetch
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/siet?cc=stale-while-revalidate=0&sleep2=2' upstream=mock ttl=1s stale=30s timeout=500ms 'fallback={"fb":1}';
    edge_orch_fragment b '/_frag/siei?cc=stale-while-revalidate=0&bad2=1' upstream=mock ttl=1s stale=30s optional;
    add_header X-Cache $edge_orch_cache_status always;
}
--- request eval
["GET /p", "GET /sleep?t=1.2", "GET /p", "GET /counts"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1}}', 'slept', '{"a":{"n":1},"b":{"n":1}}',
 "/_frag/siei=2\n/_frag/siet=2\n"]
--- response_headers_like eval
["X-Edge-Orch: a=ok; b=ok", "",
 "X-Edge-Orch: a=stale:timeout; b=stale:invalid
X-Cache: a=STALE; b=STALE
Cache-Status: edge-orch/a; hit; fwd=stale; ttl=-?\\d+, edge-orch/b; hit; fwd=stale; ttl=-?\\d+",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 10: regression: stale-if-error Cache-Status shows the negative age (ttl=-N), not ttl=0
# Regression test for a fixed bug: a body served by stale-if-error reports "ttl=0" in Cache-Status
# however stale it is (the FETCH / hold-down paths never set fs->ttl, so
# ngx_http_edge_orch_cache_status() prints 0); stale-while-revalidate
# reports the real negative age (TEST 5).  Expected here: 1.3 s after
# expiry, ttl=-1 (RFC 9211: remaining freshness, negative when stale).
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/sie?cc=stale-while-revalidate=0' upstream=mock ttl=1s stale=30s 'fallback={"fb":1}';
}
--- request eval
["GET /p", "GET /break?k=/_frag/sie", "GET /sleep?t=2.3", "GET /p"]
--- response_body eval
['{"a":{"n":1}}', 'broken', 'slept', '{"a":{"n":1}}']
--- response_headers_like eval
["", "", "",
 "X-Edge-Orch: a=stale:status
Cache-Status: edge-orch/a; hit; fwd=stale; ttl=-[12]"]
--- no_error_log
[error]
[alert]



=== TEST 11: a failed fetch holds the key down for 1 s: same fallback, no upstream request
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/down?status=503' upstream=mock ttl=10s 'fallback={"fb":1}';
    edge_orch_fragment b '/_frag/downb?status=500' upstream=mock ttl=10s optional;
}
--- request eval
["GET /p", "GET /p", "GET /counts", "GET /sleep?t=1.2", "GET /p", "GET /counts"]
--- response_body eval
['{"a":{"fb":1}}', '{"a":{"fb":1}}', "/_frag/down=1\n/_frag/downb=1\n", 'slept',
 '{"a":{"fb":1}}', "/_frag/down=2\n/_frag/downb=2\n"]
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=503, edge-orch/b; fwd=miss; fwd-status=500
X-Edge-Orch: a=fallback:status; b=omitted:status",
 "Cache-Status: edge-orch/a; fwd=miss; collapsed, edge-orch/b; fwd=miss; collapsed
X-Edge-Orch: a=fallback:status; b=omitted:status",
 "", "",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=503, edge-orch/b; fwd=miss; fwd-status=500
X-Edge-Orch: a=fallback:status; b=omitted:status",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 12: regression: the failure hold-down survives a miss of another key
# Regression test for a fixed bug: the 1 s hold-down after a failed fetch is lost as soon as any other
# key misses or is stored: ngx_http_edge_orch_expire() frees the LRU tail
# when swr_until, sie_until, pass_until and lock_until are all past, and
# ignores retry_after; a failed node without a stale body has only
# retry_after, so the next miss of another key (/b) frees it and the
# following /a goes to the failing upstream again (count 2, Cache-Status
# "fwd=miss; fwd-status=503" instead of the held-down "collapsed").
--- config
location = /a {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/down?status=503' upstream=mock ttl=10s 'fallback={"fb":1}';
}
location = /b {
    edge_orch zone=c;
    edge_orch_fragment b /_frag/other upstream=mock ttl=10s;
}
--- init
# /a fails, then /b misses; from --- init so that the next /a comes well
# within the 1 s hold-down even under valgrind
my $r = EdgeOrch::http_get('/a');
Test::More::is($r->{headers}{'cache-status'}, 'edge-orch/a; fwd=miss; fwd-status=503',
               "TEST 12 init: /a failed");
$r = EdgeOrch::http_get('/b');
Test::More::is($r->{headers}{'cache-status'}, 'edge-orch/b; fwd=miss; fwd-status=200; stored',
               "TEST 12 init: /b missed and was stored");
--- request eval
["GET /a", "GET /count?k=/_frag/down"]
--- response_body eval
['{"a":{"fb":1}}', '1']
--- response_headers eval
["Cache-Status: edge-orch/a; fwd=miss; collapsed
X-Edge-Orch: a=fallback:status",
 ""]
--- no_error_log
[error]
[alert]



=== TEST 13: no-store, private, no-cache and Set-Cookie are never stored
Every request fetches: "fwd=miss" first, then "fwd=request" (pass) while the
key is marked uncacheable.  g (public, max-age=60) is the cacheable control.
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/ns?cc=no-store' upstream=mock ttl=10s;
    edge_orch_fragment b '/_frag/pr?cc=private,+max-age=60' upstream=mock ttl=10s;
    edge_orch_fragment c '/_frag/nc?cc=no-cache' upstream=mock ttl=10s;
    edge_orch_fragment d '/_frag/ck?cookie=1' upstream=mock ttl=10s;
    edge_orch_fragment e '/_frag/uc?cc=public,+NO-STORE' upstream=mock ttl=10s;
    edge_orch_fragment f '/_frag/two?cc=max-age=60&cc=private' upstream=mock ttl=10s;
    edge_orch_fragment g '/_frag/pub?cc=public,+max-age=60' upstream=mock ttl=10s;
    add_header X-Cache $edge_orch_cache_status always;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /counts"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1},"c":{"n":1},"d":{"n":1},"e":{"n":1},"f":{"n":1},"g":{"n":1}}',
 '{"a":{"n":2},"b":{"n":2},"c":{"n":2},"d":{"n":2},"e":{"n":2},"f":{"n":2},"g":{"n":1}}',
 '{"a":{"n":3},"b":{"n":3},"c":{"n":3},"d":{"n":3},"e":{"n":3},"f":{"n":3},"g":{"n":1}}',
 "/_frag/ck=3\n/_frag/nc=3\n/_frag/ns=3\n/_frag/pr=3\n/_frag/pub=1\n/_frag/two=3\n/_frag/uc=3\n"]
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200, edge-orch/b; fwd=miss; fwd-status=200, edge-orch/c; fwd=miss; fwd-status=200, edge-orch/d; fwd=miss; fwd-status=200, edge-orch/e; fwd=miss; fwd-status=200, edge-orch/f; fwd=miss; fwd-status=200, edge-orch/g; fwd=miss; fwd-status=200; stored
X-Cache: a=MISS; b=MISS; c=MISS; d=MISS; e=MISS; f=MISS; g=MISS",
"Cache-Status: edge-orch/a; fwd=request, edge-orch/b; fwd=request, edge-orch/c; fwd=request, edge-orch/d; fwd=request, edge-orch/e; fwd=request, edge-orch/f; fwd=request, edge-orch/g; hit; ttl=([5-9]|10)
X-Cache: a=PASS; b=PASS; c=PASS; d=PASS; e=PASS; f=PASS; g=HIT",
"Cache-Status: edge-orch/a; fwd=request, edge-orch/b; fwd=request, edge-orch/c; fwd=request, edge-orch/d; fwd=request, edge-orch/e; fwd=request, edge-orch/f; fwd=request, edge-orch/g; hit; ttl=([5-9]|10)
X-Cache: a=PASS; b=PASS; c=PASS; d=PASS; e=PASS; f=PASS; g=HIT",
""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 14: after the 1 s pass window an uncacheable key is fetched as a miss again, still not stored
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/ns?cc=no-store' upstream=mock ttl=10s;
}
--- request eval
["GET /p", "GET /sleep?t=1.2", "GET /p", "GET /p", "GET /count?k=/_frag/ns"]
--- response_body eval
['{"a":{"n":1}}', 'slept', '{"a":{"n":2}}', '{"a":{"n":3}}', '3']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200", "",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=200",
 "Cache-Status: edge-orch/a; fwd=request", ""]
--- no_error_log
[error]
[alert]



=== TEST 15: max-age and s-maxage shorten ttl= but never lengthen it; stale-while-revalidate shortens stale=
a: max-age=1 with ttl=10s; b: s-maxage=1 wins over max-age=0; c: max-age=60
with ttl=1s; d: stale-while-revalidate=0 with stale=30s (expired: fetched in
the foreground, not served stale).
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/ma?cc=max-age=1' upstream=mock ttl=10s;
    edge_orch_fragment b '/_frag/sma?cc=max-age=0,+s-maxage=1' upstream=mock ttl=10s;
    edge_orch_fragment c '/_frag/long?cc=max-age=60' upstream=mock ttl=1s;
    edge_orch_fragment d '/_frag/swr0?cc=stale-while-revalidate=0' upstream=mock ttl=1s stale=30s;
}
--- request eval
["GET /p", "GET /p", "GET /sleep?t=1.3", "GET /p", "GET /counts"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1},"c":{"n":1},"d":{"n":1}}',
 '{"a":{"n":1},"b":{"n":1},"c":{"n":1},"d":{"n":1}}',
 'slept',
 '{"a":{"n":2},"b":{"n":2},"c":{"n":2},"d":{"n":2}}',
 "/_frag/long=2\n/_frag/ma=2\n/_frag/sma=2\n/_frag/swr0=2\n"]
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored, edge-orch/c; fwd=miss; fwd-status=200; stored, edge-orch/d; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/a; hit; ttl=0, edge-orch/b; hit; ttl=0, edge-orch/c; hit; ttl=0, edge-orch/d; hit; ttl=0",
 "",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored, edge-orch/c; fwd=miss; fwd-status=200; stored, edge-orch/d; fwd=miss; fwd-status=200; stored",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 16: stale-if-error=N from the upstream shortens the stale-if-error window
stale=30s, but the upstream allows only 1 s of stale-if-error (and no
stale-while-revalidate): 1.3 s after expiry a failing fetch gives the
fallback, not the stale body.
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/sie1?cc=stale-while-revalidate=0,+stale-if-error=1' upstream=mock ttl=1s stale=30s 'fallback={"fb":1}';
}
--- request eval
["GET /p", "GET /break?k=/_frag/sie1", "GET /sleep?t=2.3", "GET /p",
 "GET /count?k=/_frag/sie1"]
--- response_body eval
['{"a":{"n":1}}', 'broken', 'slept', '{"a":{"fb":1}}', '2']
--- response_headers_like eval
["X-Edge-Orch: a=ok", "", "",
 "X-Edge-Orch: a=fallback:status
Cache-Status: edge-orch/a; fwd=miss; fwd-status=503",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 17: two regions routed to different upstreams never share an entry
The routing table sends DE and FR (group eu) to cms_eu, everything else to
cms_us; both upstreams are the same mock, which counts per Host (= the
upstream's name).
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
edge_orch_region $http_x_region;
upstream cms_eu { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream cms_us { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment cms '/_frag/cms?byhost=1' ttl=10s;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /p", "GET /p", "GET /counts"]
--- more_headers eval
["X-Region: DE", "X-Region: US", "X-Region: FR", "X-Region: BR", "X-Region: DE", ""]
--- response_body eval
['{"cms":{"n":1,"host":"cms_eu"}}',
 '{"cms":{"n":1,"host":"cms_us"}}',
 '{"cms":{"n":1,"host":"cms_eu"}}',
 '{"cms":{"n":1,"host":"cms_us"}}',
 '{"cms":{"n":1,"host":"cms_eu"}}',
 "cms_eu/_frag/cms=1\ncms_us/_frag/cms=1\n"]
--- response_headers_like eval
["Cache-Status: edge-orch/cms; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/cms; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/cms; hit; ttl=([5-9]|10)",
 "Cache-Status: edge-orch/cms; hit; ttl=([5-9]|10)",
 "Cache-Status: edge-orch/cms; hit; ttl=([5-9]|10)",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 18: the same fragment with upstream= in two locations: one entry per upstream
--- http_config
upstream up1 { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream up2 { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
location = /p1 {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/up?byhost=1' upstream=up1 ttl=10s;
}
location = /p2 {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/up?byhost=1' upstream=up2 ttl=10s;
}
--- request eval
["GET /p1", "GET /p2", "GET /p1", "GET /p2", "GET /counts"]
--- response_body eval
['{"a":{"n":1,"host":"up1"}}', '{"a":{"n":1,"host":"up2"}}',
 '{"a":{"n":1,"host":"up1"}}', '{"a":{"n":1,"host":"up2"}}',
 "up1/_frag/up=1\nup2/_frag/up=1\n"]
--- no_error_log
[error]
[alert]



=== TEST 19: key= separates entries of a uri that does not vary; uri arguments always do
a: key=$arg_id; b: no key (one shared entry); c: the id in the fragment uri.
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/ka upstream=mock ttl=10s key=$arg_id;
    edge_orch_fragment b /_frag/kb upstream=mock ttl=10s;
    edge_orch_fragment c /_frag/kc?id=$arg_id upstream=mock ttl=10s;
}
--- request eval
["GET /p?id=1", "GET /p?id=2", "GET /p?id=1", "GET /p?id=2", "GET /p?id=3",
 "GET /counts"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1},"c":{"n":1}}',
 '{"a":{"n":2},"b":{"n":1},"c":{"n":2}}',
 '{"a":{"n":1},"b":{"n":1},"c":{"n":1}}',
 '{"a":{"n":2},"b":{"n":1},"c":{"n":2}}',
 '{"a":{"n":3},"b":{"n":1},"c":{"n":3}}',
 "/_frag/ka=3\n/_frag/kb=1\n/_frag/kc=3\n"]
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored, edge-orch/c; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; hit; ttl=([5-9]|10), edge-orch/c; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/a; hit; ttl=([5-9]|10), edge-orch/b; hit; ttl=([5-9]|10), edge-orch/c; hit; ttl=([5-9]|10)",
 "Cache-Status: edge-orch/a; hit; ttl=([5-9]|10), edge-orch/b; hit; ttl=([5-9]|10), edge-orch/c; hit; ttl=([5-9]|10)",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; hit; ttl=([5-9]|10), edge-orch/c; fwd=miss; fwd-status=200; stored",
 ""]
--- no_error_log
[error]
[alert]



=== TEST 20: the fragment name is part of the key: two fragments with the same upstream and uri have two entries
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/same upstream=mock ttl=10s;
    edge_orch_fragment b /_frag/same upstream=mock ttl=10s;
}
--- request eval
["GET /p", "GET /p", "GET /count?k=/_frag/same"]
--- response_body_like eval
['^\{"a":\{"n":(1\},"b":\{"n":2|2\},"b":\{"n":1)\}\}$',
 '^\{"a":\{"n":(1\},"b":\{"n":2|2\},"b":\{"n":1)\}\}$',
 '^2$']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/a; hit; ttl=([5-9]|10), edge-orch/b; hit; ttl=([5-9]|10)",
 ""]
--- no_error_log
[error]
[alert]



=== TEST 21: a tiny zone (64k) under many distinct keys evicts LRU entries; every response stays correct
300 distinct keys with bodies of 0 to 12 KB (about 1.8 MB in all) go through
a 64 KB zone from --- init; then the oldest key is fetched again (evicted)
and the newest is still a hit.
--- init
my ($bad, $stored, $n) = (0, 0, 300);
for my $round (1 .. 2) {
    for my $id (1 .. $n) {
        my $size = ($id * 397) % 12000;
        my $r = EdgeOrch::http_get("/p?id=$id&size=$size");
        my $exp = '\{"a":\{"n":' . ($round == 1 ? 1 : '\d+') . ',"pad":"x{' . $size . '}"\}\}';
        if ($r->{status} != 200 || $r->{body} !~ /^$exp$/) {
            Test::More::diag("id=$id: $r->{status} " . substr($r->{body}, 0, 100))
                if $bad++ < 5;
        }
        $stored++ if ($r->{headers}{'cache-status'} // '') =~ /stored/;
    }
}
Test::More::is($bad, 0, "TEST 21 init: 600 responses with the right JSON");
Test::More::cmp_ok($stored, '>=', 550, "TEST 21 init: a full zone still stores");
--- http_config
edge_orch_zone name=tiny:64k;
--- config
location = /p {
    edge_orch zone=tiny;
    edge_orch_fragment a '/_frag/ev/$arg_id?size=$arg_size' upstream=mock ttl=60s;
}
--- request eval
["GET /p?id=300&size=" . (300 * 397 % 12000), "GET /p?id=1&size=397",
 "GET /count?k=/_frag/ev/1"]
--- response_body_like eval
['^\{"a":\{"n":2,"pad":"x+"\}\}$', '^\{"a":\{"n":3,"pad":"x{397}"\}\}$', '^3$']
--- response_headers_like eval
["Cache-Status: edge-orch/a; hit; ttl=\\d+",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored",
 ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]
ngx_slab_alloc



=== TEST 22: a fragment larger than max_fragment is served but not cached, with one warning
--- http_config
edge_orch_zone name=small:1m max_fragment=1k;
--- config
location = /p {
    edge_orch zone=small;
    edge_orch_fragment a '/_frag/big?size=2000' upstream=mock ttl=10s;
    edge_orch_fragment b /_frag/little upstream=mock ttl=10s;
}
--- request
GET /p
--- response_body eval
'{"a":{"n":1,"pad":"' . ("x" x 2000) . '"},"b":{"n":1}}'
--- response_headers
Cache-Status: edge-orch/a; fwd=miss; fwd-status=200, edge-orch/b; fwd=miss; fwd-status=200; stored
X-Edge-Orch: a=ok; b=ok
--- error_log eval
qr/\[warn\] .*edge_orch: fragment "a" \(2\d\d\d bytes\) not cached: larger than max_fragment=1024 or no room in zone "small"/
--- no_error_log
[error]
[alert]
[crit]



=== TEST 23: a fragment larger than max_fragment is fetched every time; the warning is rate-limited per worker
--- init
for (1 .. 10) {
    my $r = EdgeOrch::http_get('/p');
    Test::More::is($r->{status}, 200, "TEST 23 init: request $_");
}
my $n = EdgeOrch::error_log_count(qr/not cached: larger than max_fragment/);
Test::More::ok($n >= 1 && $n <= 2,
               "TEST 23 init: 10 oversized stores, $n warning(s) (at most one per worker)");
--- http_config
edge_orch_zone name=small:1m max_fragment=1k;
--- config
location = /p {
    edge_orch zone=small;
    edge_orch_fragment a '/_frag/big?size=2000' upstream=mock ttl=10s;
}
--- request eval
["GET /p", "GET /count?k=/_frag/big"]
--- response_body eval
['{"a":{"n":11,"pad":"' . ("x" x 2000) . '"}}', '11']
--- response_headers_like eval
["Cache-Status: edge-orch/a; (fwd=miss; fwd-status=200|fwd=request)", ""]
--- no_error_log
[error]
[alert]
[crit]



=== TEST 24: regression: a fragment too big to store marks its entry pass-through ("fwd=request") for 1 s
# Regression test for a fixed bug: docs/architecture.md ("A response that cannot be shared (private,
# Set-Cookie, too big) marks the entry pass-through for one second so
# nobody waits for it") and docs/directives.md ("fwd=request  not
# cacheable (private, no-store, Set-Cookie, too big)"): for a body over
# max_fragment ngx_http_edge_orch_cache_store() returns NGX_ABORT after
# setting only node->failed, never pass_until, so the next request takes
# the fetch lock again ("fwd=miss; fwd-status=200") and concurrent
# requests wait for it (031-coalesce.t TEST 15).
--- http_config
edge_orch_zone name=small:1m max_fragment=1k;
--- config
location = /p {
    edge_orch zone=small;
    edge_orch_fragment a '/_frag/big?size=2000' upstream=mock ttl=10s;
    add_header X-Cache $edge_orch_cache_status;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"a":{"n":1,"pad":"' . ("x" x 2000) . '"}}',
 '{"a":{"n":2,"pad":"' . ("x" x 2000) . '"}}']
--- response_headers eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200",
 "Cache-Status: edge-orch/a; fwd=request
X-Cache: a=PASS"]
--- no_error_log
[error]
[alert]



=== TEST 25: the zone keeps its entries across a reload (HUP)
--- init
my $r = EdgeOrch::http_get('/p');
Test::More::like($r->{headers}{'cache-status'} // '', qr/stored$/,
                 "TEST 25 init: stored before the reload");
my $master = EdgeOrch::nginx_master_pid();
my @old = EdgeOrch::nginx_worker_pids($master);
kill 'HUP', $master or die "kill HUP $master: $!";
# old workers leave once idle (under valgrind: after writing their report)
for (1 .. 1200) {
    last if EdgeOrch::error_log_count(qr/worker process \d+ exited with code 0/) >= @old;
    select undef, undef, undef, 0.05;
}
my @new = EdgeOrch::nginx_worker_pids($master);
my %old = map { $_ => 1 } @old;
Test::More::is(scalar(grep { $old{$_} } @new), 0,
               "TEST 25 init: only new workers after the reload (@old -> @new)");
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/reload upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p", "GET /count?k=/_frag/reload"]
--- response_body eval
['{"a":{"n":1}}', '{"a":{"n":1}}', '1']
--- response_headers_like eval
["Cache-Status: edge-orch/a; hit; ttl=\\d+", "Cache-Status: edge-orch/a; hit; ttl=\\d+", ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 26: without ttl= the zone only coalesces: nothing is served from it later
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/nottl upstream=mock;
}
--- request eval
["GET /p", "GET /p", "GET /count?k=/_frag/nottl"]
--- response_body eval
['{"a":{"n":1}}', '{"a":{"n":2}}', '2']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200(; stored)?",
 "Cache-Status: edge-orch/a; fwd=miss; fwd-status=200(; stored)?", ""]
--- no_error_log
[error]
[alert]
