# Surrogate keys (tags): where they come from (Surrogate-Key, Cache-Tag,
# edge_orch_tags), the union in the response header (order, duplicates,
# separator, edge_orch_expose_tags off), limits, omitted fragments, cached
# fragments.
#
# The mock upstream answers {"n":<its fetch count for this URI>} and sets
# tags from its query arguments:
#   sk=...       Surrogate-Key        ct=...      Cache-Tag     xt=... X-Tags
#   gen=N        Surrogate-Key "t1 t2 ... tN"   ctgen=N   Cache-Tag "c1,...,cN"
#   big=N&pfx=P  Surrogate-Key of N tags of exactly 1000 bytes (P001xxx...)
#   bad=1        Surrogate-Key "ok1 café ok2 y{1025} ok3 z{1024}"
#   multi=1      two Surrogate-Key lines "m1 m2" and "m3"
#   status=N     answer with status N         sleep=S  sleep S seconds
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup(lua => 1);

repeat_each(1);
workers(2);
master_on();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
lua_shared_dict counts 1m;
edge_orch_zone name=z:8m;
upstream mock { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / {
        content_by_lua_block {
            local a = ngx.req.get_uri_args()
            local n = ngx.shared.counts:incr(ngx.var.uri, 1, 0)
            local function gen(p, k, sep)
                local t = {}
                for i = 1, k do t[i] = p .. i end
                return table.concat(t, sep)
            end
            local sk = {}
            if a.sk then sk[#sk + 1] = a.sk end
            if a.gen then sk[#sk + 1] = gen("t", tonumber(a.gen), " ") end
            if a.big then
                local t = {}
                for i = 1, tonumber(a.big) do
                    local s = (a.pfx or "k") .. string.format("%03d", i)
                    t[i] = s .. string.rep("x", 1000 - #s)
                end
                sk[#sk + 1] = table.concat(t, " ")
            end
            if a.bad then
                sk[#sk + 1] = table.concat({"ok1", "caf\195\169", "ok2",
                    string.rep("y", 1025), "ok3",
                    string.rep("z", 1024)}, " ")
            end
            if a.multi then sk[#sk + 1] = "m1 m2"; sk[#sk + 1] = "m3" end
            if #sk > 0 then ngx.header["Surrogate-Key"] = sk end
            local ct = {}
            if a.ct then ct[#ct + 1] = a.ct end
            if a.ctgen then ct[#ct + 1] = gen("c", tonumber(a.ctgen), ",") end
            if #ct > 0 then ngx.header["Cache-Tag"] = ct end
            if a.xt then ngx.header["X-Tags"] = a.xt end
            if a.sleep then ngx.sleep(tonumber(a.sleep)) end
            if a.status then ngx.status = tonumber(a.status) end
            ngx.print('{"n":' .. n .. '}')
        }
    }
}
_EOC_
    my $c = $block->config // '';
    $c .= "\nlocation = /purge { edge_orch_purge zone=z; }\n"
        unless $c =~ m{location\s*=\s*/purge\s*\{};
    $block->set_value("config", $c . <<'_EOC_');
location /_frag/ {
    internal;
    proxy_buffer_size 128k;
    proxy_buffers 4 128k;
    proxy_busy_buffers_size 128k;
    proxy_pass http://$edge_orch_upstream;
}
_EOC_
});

run_tests();

__DATA__

=== TEST 1: the union of all tags: declaration order, no duplicates, Cache-Tag split on commas, edge_orch_tags last
--- config
location = /p {
    edge_orch;
    edge_orch_tags "page:home y";
    edge_orch_fragment a "/_frag/a?sk=x%20%20y" upstream=mock;
    edge_orch_fragment b "/_frag/b?ct=y,%20z,,v" upstream=mock;
    edge_orch_fragment c "/_frag/c?sk=x%20w&ct=u" upstream=mock;
}
--- request
GET /p
--- response_body chomp
{"a":{"n":1},"b":{"n":1},"c":{"n":1}}
--- response_headers
Surrogate-Key: x y z v w u page:home
!Cache-Tag
--- no_error_log
[error]



=== TEST 2: several tag header lines from one upstream all count
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a "/_frag/a?multi=1&ct=c1&sk=s1" upstream=mock;
}
--- request
GET /p
--- response_headers
Surrogate-Key: s1 m1 m2 m3 c1



=== TEST 3: with a cache zone the order is the same: fragments first, edge_orch_tags last
# Regression test for a fixed bug: with a zone, a fragment's stored tag list is its upstream tags plus
# the page's edge_orch_tags (fetch_done appends them for purges), and the
# response header is built from the stored lists, so the page tags come
# right after the first fragment's tags instead of last, and a page with a
# cache zone sends a different header order than the same page without one.
# Reproduce: the config below; GET /p -> "Surrogate-Key: x y page:home z w"
# (expected "x y z w page:home", as without a zone: TEST 1).
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_tags "page:home";
    edge_orch_fragment a "/_frag/a?sk=x%20y" upstream=mock ttl=60s;
    edge_orch_fragment b "/_frag/b?sk=z%20w" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1}}', '{"a":{"n":1},"b":{"n":1}}']
--- response_headers eval
["Surrogate-Key: x y z w page:home", "Surrogate-Key: x y z w page:home"]



=== TEST 4: a fragment cached by one page does not bring that page's edge_orch_tags into another page
# Regression test for a fixed bug: the page tags stored with a fragment (so that a purge of page:home
# reaches it) are sent as if they were the fragment's own tags by every
# page that later gets the fragment from the cache: /about announces
# page:home to the outer CDN.  Same root cause as TEST 3.
# Reproduce: the config below; GET /home, then GET /about -> "Surrogate-Key:
# nav page:home page:about" (expected "nav page:about").
--- config
location = /home {
    edge_orch zone=z;
    edge_orch_tags "page:home";
    edge_orch_fragment nav "/_frag/nav?sk=nav" upstream=mock ttl=60s;
}
location = /about {
    edge_orch zone=z;
    edge_orch_tags "page:about";
    edge_orch_fragment nav "/_frag/nav?sk=nav" upstream=mock ttl=60s;
}
--- request eval
["GET /home", "GET /about"]
--- response_body eval
['{"nav":{"n":1}}', '{"nav":{"n":1}}']
--- response_headers eval
["Surrogate-Key: nav page:home", "Surrogate-Key: nav page:about"]



=== TEST 5: edge_orch_tag_header Cache-Tag: the union is comma separated; Surrogate-Key is not read
--- config
location = /p {
    edge_orch;
    edge_orch_tag_header Cache-Tag;
    edge_orch_tags "page:ct";
    edge_orch_fragment a "/_frag/a?ct=a&sk=ignored" upstream=mock;
    edge_orch_fragment b "/_frag/b?ct=b" upstream=mock;
    edge_orch_fragment c "/_frag/c?ct=a" upstream=mock;
}
--- request
GET /p
--- response_headers
Cache-Tag: a,b,page:ct
!Surrogate-Key



=== TEST 6: edge_orch_tag_header Cache-Tag: comma separated lists from upstreams are split and de-duplicated
# Regression test for a fixed bug: when edge_orch_tag_header is Cache-Tag, capture_headers() matches the
# upstream's Cache-Tag as *the* tag header and splits it on spaces only
# (sep ' '), never on commas: "a,b" is one tag "a,b".  The output looks
# right for a single fragment but is not de-duplicated across fragments,
# and purges of "a" do not reach it (TEST 7).
# Reproduce: the config below; GET /p -> "Cache-Tag: a,b,b,c" (expected
# "a,b,c").
--- config
location = /p {
    edge_orch;
    edge_orch_tag_header Cache-Tag;
    edge_orch_fragment a "/_frag/a?ct=a,b" upstream=mock;
    edge_orch_fragment b "/_frag/b?ct=b,c" upstream=mock;
}
--- request
GET /p
--- response_headers
Cache-Tag: a,b,c



=== TEST 7: edge_orch_tag_header Cache-Tag: a purge of one tag of a comma separated list reaches the fragment
# Regression test for a fixed bug: same cause as TEST 6, on both sides: the fragment is stored with the
# single tag "a,b", and a purge request's "Cache-Tag: a,b" is read as the
# single tag "a,b" as well (the purge handler also takes the tag header
# with sep ' ' first), so PURGE "Cache-Tag: a" -> 200 but the fragment
# stays a hit.
# Reproduce: the config below; GET /p; PURGE /purge "Cache-Tag: a" -> 200
# {"purged":["a"],...}; GET /p -> hit, body {"x":{"n":1}} (expected a miss).
# PURGE "Cache-Tag: a,b" answers {"purged":["a,b"],...} (expected ["a","b"]).
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_tag_header Cache-Tag;
    edge_orch_fragment x "/_frag/x?ct=a,b" upstream=mock ttl=60s;
}
location = /purge {
    edge_orch_tag_header Cache-Tag;
    edge_orch_purge zone=z;
}
--- request eval
["GET /p", "PURGE /purge", "GET /p", "PURGE /purge", "GET /p"]
--- more_headers eval
["", "Cache-Tag: a", "", "Cache-Tag: b,c", ""]
--- response_body eval
['{"x":{"n":1}}', qr/"purged":\["a"\]/, '{"x":{"n":2}}', qr/"purged":\["b","c"\]/, '{"x":{"n":3}}']



=== TEST 8: a custom tag header name: read from upstreams (with Cache-Tag), sent, and used by purges
The mock sends Surrogate-Key (ignored here), Cache-Tag, X-Tags in this
order; tags keep the order of the upstream's headers.
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_tag_header X-Tags;
    edge_orch_fragment x "/_frag/x?xt=p%20q&sk=ignored&ct=r" upstream=mock ttl=60s;
}
location = /purge {
    edge_orch_tag_header X-Tags;
    edge_orch_purge zone=z;
}
--- request eval
["GET /p", "PURGE /purge", "GET /p", "PURGE /purge", "GET /p", "GET /p"]
--- more_headers eval
["", "Surrogate-Key: p", "", "X-Tags: q", "", ""]
--- response_body eval
['{"x":{"n":1}}', qr/^\{"error":"no tags/, '{"x":{"n":1}}', qr/"purged":\["q"\]/, '{"x":{"n":2}}', '{"x":{"n":2}}']
--- response_headers eval
["X-Tags: r p q\n!Surrogate-Key", "", "X-Tags: r p q", "", "X-Tags: r p q", "X-Tags: r p q"]
--- error_code eval
[200, 400, 200, 200, 200, 200]



=== TEST 9: edge_orch_expose_tags off: no tag header, but the tags still work for purges
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_expose_tags off;
    edge_orch_tags "page:hidden";
    edge_orch_fragment x "/_frag/x?sk=hidden%20other" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p", "PURGE /purge", "GET /p", "PURGE /purge", "GET /p"]
--- more_headers eval
["", "", "Surrogate-Key: hidden", "", "Surrogate-Key: page:hidden", ""]
--- response_body eval
['{"x":{"n":1}}', '{"x":{"n":1}}', qr/"purged":\["hidden"\]/, '{"x":{"n":2}}', qr/"purged":\["page:hidden"\]/, '{"x":{"n":3}}']
--- response_headers eval
["!Surrogate-Key\n!Cache-Tag", "!Surrogate-Key", "", "!Surrogate-Key", "", "!Surrogate-Key"]



=== TEST 10: edge_orch_tags with a variable
--- config
location = /p {
    edge_orch;
    edge_orch_region $http_x_region;
    edge_orch_tags "page:home region:$edge_orch_region lang:$arg_lang";
    edge_orch_fragment a "/_frag/a?sk=art" upstream=mock;
}
--- request eval
["GET /p?lang=ja", "GET /p?lang=en", "GET /p"]
--- more_headers eval
["X-Region: JP", "X-Region: not valid!", ""]
--- response_headers eval
["Surrogate-Key: art page:home region:JP lang:ja",
 "Surrogate-Key: art page:home region:default lang:en",
 "Surrogate-Key: art page:home region:default lang:"]



=== TEST 11: page tags reach the cached fragments: a purge of region:JP refetches JP's entry only
The fragment's key includes the region, so each region has its own entry
carrying its own region tag.
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_region $http_x_region;
    edge_orch_tags "region:$edge_orch_region";
    edge_orch_fragment a "/_frag/a?sk=art" upstream=mock ttl=60s key=$edge_orch_region;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /p", "PURGE /purge", "GET /p", "GET /p"]
--- more_headers eval
["X-Region: JP", "X-Region: US", "X-Region: JP", "X-Region: US", "Surrogate-Key: region:JP", "X-Region: JP", "X-Region: US"]
--- response_body eval
['{"a":{"n":1}}', '{"a":{"n":2}}', '{"a":{"n":1}}', '{"a":{"n":2}}', qr/"purged":\["region:JP"\]/, '{"a":{"n":3}}', '{"a":{"n":2}}']
--- response_headers_like eval
['Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/a; hit; ttl=\d+',
 'Cache-Status: edge-orch/a; hit; ttl=\d+',
 'X-None: ',
 'Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/a; hit; ttl=\d+']



=== TEST 12: a 64 KB Surrogate-Key from an upstream: the request succeeds, at most 16 KB of it is kept
64 tags of 1000 bytes: the fragment keeps the first 16 (16,015 bytes).
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a "/_frag/a?big=64" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"a":{"n":1}}', '{"a":{"n":1}}']
--- response_headers_like eval
["Surrogate-Key: (?:k\\d{3}x{996} ){15}k016x{996}\nCache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored",
 "Surrogate-Key: (?:k\\d{3}x{996} ){15}k016x{996}\nCache-Status: edge-orch/a; hit; ttl=\\d+"]
--- no_error_log
[error]



=== TEST 13: the response header stays within 16 KB when the fragments' tags add up to more
Two fragments of ten 1000-byte tags: the header gets the first 16.
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a "/_frag/a?big=10&pfx=a" upstream=mock;
    edge_orch_fragment b "/_frag/b?big=10&pfx=b" upstream=mock;
}
--- request
GET /p
--- response_headers_like
Surrogate-Key: (?:a\d{3}x{996} ){10}(?:b\d{3}x{996} ){5}b006x{996}
--- error_log
edge_orch: 4 tags left out of the "Surrogate-Key" response header (limit 16384 bytes)
--- no_error_log
[error]



=== TEST 14: tags with a non-ASCII byte or over 1024 bytes are dropped, the others kept (1024 bytes is fine)
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a "/_frag/a?bad=1" upstream=mock;
}
--- request
GET /p
--- response_body chomp
{"a":{"n":1}}
--- response_headers eval
"Surrogate-Key: ok1 ok2 ok3 " . ("z" x 1024)



=== TEST 15: at most 256 tags per fragment, Surrogate-Key and Cache-Tag together
a sends t1..t300: t1..t256 kept; b sends t1..t200 and c1..c100: t1..t200
(duplicates in the union) and c1..c56 kept.
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a "/_frag/a?gen=300" upstream=mock;
    edge_orch_fragment b "/_frag/b?gen=200&ctgen=100" upstream=mock;
}
--- request
GET /p
--- response_headers eval
"Surrogate-Key: " . CORE::join(" ", (map { "t$_" } 1 .. 256), (map { "c$_" } 1 .. 56))



=== TEST 16: fragments left out of the document leave their tags out of the header
b fails (503) and c times out, both optional; d fails and is replaced by
its fallback, which has no tags.
--- config
location = /p {
    edge_orch;
    edge_orch_tags "page:p";
    edge_orch_fragment a "/_frag/a?sk=keep" upstream=mock;
    edge_orch_fragment b "/_frag/b?sk=gone&status=503" upstream=mock optional;
    edge_orch_fragment c "/_frag/c?sk=late&sleep=1" upstream=mock optional timeout=100ms;
    edge_orch_fragment d "/_frag/d?sk=fb&status=503" upstream=mock fallback=null;
}
--- request
GET /p
--- response_body chomp
{"a":{"n":1},"d":null}
--- response_headers
Surrogate-Key: keep page:p
X-Edge-Orch: a=ok; b=omitted:status; c=omitted:timeout; d=fallback:status



=== TEST 17: tags survive caching: same header on a miss, a hit, a stale answer and after the refresh
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a "/_frag/a?sk=x%20y" upstream=mock ttl=60s stale=60s;
    edge_orch_fragment b "/_frag/b?ct=z" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /p", "POST /purge\n{\"tags\":[\"z\"],\"soft\":true}", "GET /p", "GET /p"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1}}', '{"a":{"n":1},"b":{"n":1}}', qr/"mode":"soft"/,
 '{"a":{"n":1},"b":{"n":1}}', '{"a":{"n":1},"b":{"n":2}}']
--- response_headers_like eval
["Surrogate-Key: x y z\nCache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored",
 "Surrogate-Key: x y z\nCache-Status: edge-orch/a; hit; ttl=\\d+, edge-orch/b; hit; ttl=\\d+",
 "X-None: ",
 "Surrogate-Key: x y z\nCache-Status: edge-orch/a; hit; ttl=\\d+, edge-orch/b; hit; fwd=stale; ttl=0",
 "Surrogate-Key: x y z\nCache-Status: edge-orch/a; hit; ttl=\\d+, edge-orch/b; hit; ttl=\\d+"]
--- wait: 0.05
--- no_error_log
[error]



=== TEST 18: no tags anywhere: no tag header
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a "/_frag/a" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_headers eval
["!Surrogate-Key\n!Cache-Tag", "!Surrogate-Key\n!Cache-Tag"]
