# Request coalescing through the zone's fetch locks: concurrent misses for
# one key make one upstream fetch across both workers, waiters share its
# result or its failure, and a dead lock holder is taken over at
# min(fragment timeout, zone lock_timeout).
#
# Concurrent requests are sent from --- init (all connected and written
# before any response is read, see EdgeOrch::http_parallel); their results
# are checked there with Test::More, the block's own requests then ask the
# mock how often it was fetched (/count?k=<mock uri>; the mock counts in a
# lua_shared_dict, its body is {"n":<fetch number>}).  Mock query
# arguments: sleep=<s> (every fetch), sleep1=<s> (first fetch only),
# sleep2=<s> (all fetches but the first), status=<code> (every fetch),
# status2=<code> (all but the first), cc=<Cache-Control>, size=<n> (a
# "pad" member of n bytes).  Blocks titled "regression:"
# reproduce defects these tests found (described in their comments); they
# are fixed and the blocks keep them fixed.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup(lua => 1);

repeat_each(1);
workers(2);
master_on();
no_shuffle();
worker_connections(1024);

our $N = 60;

# run from --- init: $n concurrent GET $path; checks every response with
# $ok->($res) and counts the Cache-Status values
sub storm {
    my ($name, $path, $n, $ok) = @_;
    my @res = EdgeOrch::http_parallel([($path) x $n], timeout => 30);
    my (%cs, @bad);
    for my $r (@res) {
        my $cs = $r->{headers}{'cache-status'} // '-';
        $cs =~ s/ttl=-?\d+/ttl=N/;
        $cs{$cs}++;
        push @bad, $r unless !$r->{error} && $ok->($r);
    }
    Test::More::is(scalar @bad, 0, "$name: $n concurrent responses as expected")
        or Test::More::diag(join "\n", map { ($_->{error} // '') . " $_->{status} $_->{body} "
            . ($_->{headers}{'x-edge-orch'} // '-') } @bad[0 .. ($#bad > 4 ? 4 : $#bad)]);
    my @t = sort { $a <=> $b } map { $_->{time} // 99 } @res;
    Test::More::note("$name: Cache-Status: ", join('; ', map { "$_ x$cs{$_}" } sort keys %cs),
                     sprintf(" - time min %.3f median %.3f max %.3f", $t[0], $t[@t / 2], $t[-1]));
    return \%cs;
}

# wait (up to 10 s) until the mock has counted $n fetches of $uri
sub wait_count {
    my ($uri, $n) = @_;
    for (1 .. 200) {
        my $r = EdgeOrch::http_get("/count?k=$uri");
        return if $r->{body} >= $n;
        select undef, undef, undef, 0.05;
    }
    die "the mock never saw $n fetch(es) of $uri";
}

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
lua_shared_dict mock 1m;
upstream mock { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location /_frag/ {
        content_by_lua_block {
            local d = ngx.shared.mock
            local a = ngx.req.get_uri_args()
            local n = d:incr(ngx.var.uri, 1, 0)
            local s = tonumber(a.sleep or (n == 1 and a.sleep1)
                               or (n > 1 and a.sleep2) or 0)
            if s > 0 then ngx.sleep(s) end
            local st = a.status or (n > 1 and a.status2)
            if st then
                ngx.status = tonumber(st)
                ngx.print('{"down":true}')
                return
            end
            if a.cc then ngx.header["Cache-Control"] = a.cc end
            if a.size then
                ngx.print('{"n":' .. n .. ',"pad":"'
                          .. string.rep("x", tonumber(a.size)) .. '"}')
                return
            end
            ngx.print('{"n":' .. n .. '}')
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
_EOC_
});

run_tests();

__DATA__

=== TEST 1: 60 concurrent misses for a cold key: one upstream fetch, every client gets its body
--- init
my $cs = main::storm("TEST 1", "/p", $main::N, sub {
    my $r = shift;
    $r->{status} == 200 && $r->{body} eq '{"a":{"n":1}}'
        && $r->{headers}{'x-edge-orch'} eq 'a=ok'
        && $r->{headers}{'cache-status'} =~ m{^edge-orch/a; (fwd=miss; fwd-status=200; stored|fwd=miss; collapsed|hit; ttl=\d+)$}
});
Test::More::is($cs->{'edge-orch/a; fwd=miss; fwd-status=200; stored'}, 1, "TEST 1: one stored miss");
Test::More::cmp_ok($cs->{'edge-orch/a; fwd=miss; collapsed'} // 0, '>', 0,
                   "TEST 1: requests collapsed into it");
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=1' upstream=mock ttl=60s timeout=10s;
}
--- request eval
["GET /p", "GET /count?k=/_frag/slow"]
--- response_body eval
['{"a":{"n":1}}', '1']
--- response_headers_like eval
["Cache-Status: edge-orch/a; hit; ttl=\\d+", ""]
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 2: without ttl= concurrent misses still coalesce, but a later request fetches again
--- init
main::storm("TEST 2", "/p", $main::N, sub {
    my $r = shift;
    $r->{status} == 200 && $r->{body} eq '{"a":{"n":1}}'
        && $r->{headers}{'cache-status'} =~ m{^edge-orch/a; fwd=miss; (fwd-status=200(; stored)?|collapsed)$}
});
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=1' upstream=mock timeout=10s;
}
--- request eval
["GET /count?k=/_frag/slow", "GET /p", "GET /count?k=/_frag/slow"]
--- response_body eval
['1', '{"a":{"n":2}}', '2']
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 3: 60 concurrent misses and the one fetch fails (after 1 s): every client gets the fallback, the upstream is asked once
--- init
my $cs = main::storm("TEST 3", "/p", $main::N, sub {
    my $r = shift;
    $r->{status} == 200 && $r->{body} eq '{"a":{"fb":true}}'
        && $r->{headers}{'x-edge-orch'} eq 'a=fallback:status'
});
Test::More::is($cs->{'edge-orch/a; fwd=miss; fwd-status=503'}, 1, "TEST 3: one fetch");
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/fail?sleep=1&status=503' upstream=mock ttl=60s timeout=10s 'fallback={"fb":true}';
}
--- request
GET /count?k=/_frag/fail
--- response_body chomp
1
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 4: a failing shared fetch of a required fragment: every client gets the 502, the upstream is asked once
--- init
main::storm("TEST 4", "/p", $main::N, sub {
    my $r = shift;
    $r->{status} == 502
        && $r->{body} eq qq({"error":"fragment failed","fragment":"a","reason":"status"}\n)
        && $r->{headers}{'x-edge-orch'} =~ /^a=failed:status; b=(ok|\w+)/
});
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/fail?sleep=1&status=503' upstream=mock ttl=60s timeout=10s;
    edge_orch_fragment b /_frag/ok upstream=mock ttl=60s;
}
--- request eval
["GET /count?k=/_frag/fail", "GET /count?k=/_frag/ok"]
--- response_body eval
['1', '1']
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 5: concurrent requests for different keys are not serialised
20 keys x 3 requests, each fetch takes 0.5 s: one fetch per key, and all of
them run at the same time (no response takes much more than one fetch).
--- init
my @paths = map { my $k = $_ % 20; "/p?k=$k" } 1 .. 60;
my @res = EdgeOrch::http_parallel(\@paths, timeout => 30);
my @bad = grep { $_->{status} != 200 || $_->{body} ne '{"a":{"n":1}}' } @res;
Test::More::is(scalar @bad, 0, "TEST 5: 60 responses, one fetch per key");
if (!$ENV{TEST_NGINX_USE_VALGRIND}) {
    my @slow = grep { ($_->{time} // 99) > 1.4 } @res;
    Test::More::is(scalar @slow, 0, "TEST 5: no response waited for another key's fetch");
}
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/k$arg_k?sleep=0.5' upstream=mock ttl=60s timeout=10s;
}
--- request eval
["GET /count?k=/_frag/k0", "GET /count?k=/_frag/k7", "GET /count?k=/_frag/k19"]
--- response_body eval
['1', '1', '1']
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 6: a lock holder killed with SIGKILL: the next request takes over after lock_timeout
The first fetch hangs for 10 s; both workers are killed while it holds the
lock, the master starts new ones.  lock_timeout=1s < timeout=3s: a new
request waits for the orphaned lock until its deadline (1 s after it was
taken), then fetches itself (the mock's second fetch is immediate).
--- init
my ($holder) = EdgeOrch::http_start(['/p']);
main::wait_count('/_frag/hang', 1);
my $tl = Time::HiRes::time();
my $master = EdgeOrch::nginx_master_pid();
my @old = EdgeOrch::nginx_worker_pids($master);
kill 'KILL', @old;
EdgeOrch::wait_error_log(qr/exited on signal 9/, scalar @old);
my %old = map { $_ => 1 } @old;
for (1 .. 200) {
    my @new = grep { !$old{$_} } EdgeOrch::nginx_worker_pids($master);
    last if @new == @old;
    select undef, undef, undef, 0.05;
}
close $holder;
my $t0 = Time::HiRes::time();
my $r = EdgeOrch::http_get('/p');
Test::More::note(sprintf "TEST 6: request sent %.3f s after the lock was taken; "
    . "it took %.3f s (%s, %s)", $t0 - $tl,
    $r->{time}, $r->{headers}{'x-edge-orch'} // '-', $r->{body});
Test::More::is($r->{body}, '{"a":{"n":2}}', "TEST 6: the orphaned lock was taken over");
Test::More::cmp_ok($r->{time}, '<', 2.5 * ($ENV{TEST_NGINX_USE_VALGRIND} ? 4 : 1),
                   "TEST 6: within lock_timeout and a margin");
--- http_config
edge_orch_zone name=c:1m lock_timeout=1s;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/hang?sleep1=10' upstream=mock ttl=60s timeout=3s 'fallback={"fb":true}';
}
--- request
GET /count?k=/_frag/hang
--- response_body chomp
2
--- error_log
[alert]
exited on signal 9
--- no_error_log
[error]
[crit]
[emerg]



=== TEST 7: the lock deadline is the fragment's timeout when it is shorter than lock_timeout
lock_timeout is the default (5 s), timeout=2s: after the holder is killed,
a new request gets the lock 2.25 s after it was taken (the fragment's
timeout plus a 250 ms grace, so that a live holder's own timeout always
comes first), i.e. before its own 2 s timeout fires when it arrives more
than 250 ms after the holder, and fetches.
--- init
my $t0 = Time::HiRes::time();
my ($holder) = EdgeOrch::http_start(['/p']);
main::wait_count('/_frag/hang', 1);
my $master = EdgeOrch::nginx_master_pid();
my @old = EdgeOrch::nginx_worker_pids($master);
kill 'KILL', @old;
EdgeOrch::wait_error_log(qr/exited on signal 9/, scalar @old);
my %old = map { $_ => 1 } @old;
for (1 .. 200) {
    my @new = grep { !$old{$_} } EdgeOrch::nginx_worker_pids($master);
    last if @new == @old;
    select undef, undef, undef, 0.05;
}
close $holder;
my $left = 0.5 - (Time::HiRes::time() - $t0);
select undef, undef, undef, $left if $left > 0;
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/hang?sleep1=10' upstream=mock ttl=60s timeout=2s 'fallback={"fb":true}';
    add_header X-Resp-Time $request_time;
}
--- request
GET /p
--- response_body chomp
{"a":{"n":2}}
--- response_headers_like
X-Edge-Orch: a=ok
Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored
X-Resp-Time: [01]\.\d+
--- error_log
[alert]
exited on signal 9
--- no_error_log
[error]
[crit]
[emerg]



=== TEST 8: an expired entry and a failing shared fetch: every concurrent client gets the stale body (stale-if-error)
--- init
my $r = EdgeOrch::http_get('/p');
Test::More::is($r->{body}, '{"a":{"n":1}}', "TEST 8: first fetch");
select undef, undef, undef, 1.2;
main::storm("TEST 8", "/p", $main::N, sub {
    my $r = shift;
    $r->{status} == 200 && $r->{body} eq '{"a":{"n":1}}'
        && $r->{headers}{'x-edge-orch'} eq 'a=stale:status'
        && $r->{headers}{'cache-status'} =~ m{^edge-orch/a; hit; fwd=stale; ttl=-?\d+$}
});
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/sie?cc=stale-while-revalidate=0&sleep2=1&status2=503' upstream=mock ttl=1s stale=60s timeout=10s 'fallback={"fb":true}';
}
--- request
GET /count?k=/_frag/sie
--- response_body chomp
2
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 9: a zone full of locked entries: requests pass through without sharing, none fails
key=$arg_pad makes every entry about 2 KB (a slab page each), so a 64 KB
zone holds about a dozen fetch locks; 60 concurrent slow (1 s) misses for
distinct keys must all be answered, the ones that found no room with
Cache-Status "fwd=request".
--- init
my $pad = 'p' x 2000;
my @res = EdgeOrch::http_parallel([map { "/p?k=$_&pad=$pad" } 1 .. 60], timeout => 30);
my (%cs, @bad);
for my $r (@res) {
    (my $cs = $r->{headers}{'cache-status'} // '-') =~ s/ttl=\d+/ttl=N/;
    $cs{$cs}++;
    push @bad, $r unless $r->{status} == 200 && $r->{body} eq '{"a":{"n":1}}';
}
Test::More::is(scalar @bad, 0, "TEST 9: 60 responses from the upstream");
Test::More::note("TEST 9: ", join '; ', map { "$_ x$cs{$_}" } sort keys %cs);
Test::More::cmp_ok($cs{'edge-orch/a; fwd=request'} // 0, '>', 0,
                   "TEST 9: some requests found the zone full and passed");
--- http_config
edge_orch_zone name=tiny:64k;
--- config
location = /p {
    edge_orch zone=tiny;
    edge_orch_fragment a '/_frag/full$arg_k?sleep=1' upstream=mock ttl=60s timeout=10s key=$arg_pad;
}
--- request
GET /count?k=/_frag/full60
--- response_body chomp
1
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 10: regression: a lock holder whose client goes away must not hold the key down
# Regression test for a fixed bug: when the client of the request holding a fetch lock closes its
# connection, ngx_http_edge_orch_check_client() -> abort_fragment() calls
# ngx_http_edge_orch_cache_fail(..., NGX_HTTP_EDGE_ORCH_REASON_ERROR): the
# cancelled fetch is recorded as an upstream failure and the key is held
# down for 1 s (retry_after).  A new request for the key then gets
# "a=fallback:error" without contacting the (healthy) upstream.
# Expected: the new request fetches ({"a":{"n":2}}, a=ok).
--- init
my ($holder) = EdgeOrch::http_start(['/p']);
main::wait_count('/_frag/slow', 1);
close $holder;
select undef, undef, undef, 0.1;
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=0.5' upstream=mock ttl=60s 'fallback={"fb":true}';
}
--- request
GET /p
--- response_body chomp
{"a":{"n":2}}
--- response_headers
X-Edge-Orch: a=ok
--- no_error_log
[alert]
[crit]



=== TEST 11: regression: waiters take over when the lock holder's client goes away
# Regression test for a fixed bug: same cause as TEST 10: the waiters of a fetch whose client closed
# the connection are woken with a shared failure (reason "error") and
# answer with the fallback at once (Cache-Status "fwd=miss; collapsed")
# instead of fetching themselves.  Expected: the waiter fetches
# ({"a":{"n":2}}), so the mock counts 2 fetches.
--- init
my ($holder) = EdgeOrch::http_start(['/p']);
main::wait_count('/_frag/slow', 1);
my ($waiter) = EdgeOrch::http_start(['/p']);
select undef, undef, undef, 0.1;
close $holder;
my $r = EdgeOrch::http_read($waiter);
Test::More::is($r->{body}, '{"a":{"n":2}}',
               "TEST 11: the waiter fetched ("
               . ($r->{headers}{'x-edge-orch'} // '-') . "; "
               . ($r->{headers}{'cache-status'} // '-') . ")");
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=0.5' upstream=mock ttl=60s 'fallback={"fb":true}';
}
--- request
GET /count?k=/_frag/slow
--- response_body chomp
2
--- no_error_log
[alert]
[crit]



=== TEST 12: regression: a fetch cancelled because a required sibling failed must not hold the key down
# Regression test for a fixed bug: /p answers 502 as soon as the required fragment b fails; its still
# running fragment a (the lock holder) is aborted by
# ngx_http_edge_orch_finish() -> abort_fragment(), which records
# NGX_HTTP_EDGE_ORCH_REASON_ERROR for a's key.  For the next second every
# page using a (here /q) gets "a=fallback:error" although a's upstream is
# healthy and was never asked again.  Expected: /q fetches a ({"n":2}).
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=0.5' upstream=mock ttl=60s 'fallback={"fb":true}';
    edge_orch_fragment b '/_frag/fail?status=503' upstream=mock;
}
location = /q {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=0.5' upstream=mock ttl=60s 'fallback={"fb":true}';
}
--- request eval
["GET /p", "GET /q", "GET /count?k=/_frag/slow"]
--- error_code eval
[502, 200, 200]
--- response_body eval
[qq({"error":"fragment failed","fragment":"b","reason":"status"}\n),
 '{"a":{"n":2}}', '2']
--- response_headers eval
["", "X-Edge-Orch: a=ok", ""]
--- no_error_log
[alert]
[crit]



=== TEST 13: regression: a fragment that times out while waiting for another fetch still has its Cache-Status member
# Regression test for a fixed bug: a waiter (LOOKUP_WAIT) keeps fs->cache == NGX_HTTP_EDGE_ORCH_CACHE_NONE
# until the lookup after the wait; when its own timeout fires first, the
# fragment is answered (fallback:timeout) with no member in Cache-Status and
# no entry in $edge_orch_cache_status, contrary to "one member per
# fragment".  /w uses the key that /h is fetching (same name, upstream,
# uri) with a shorter timeout.
--- init
# the holder must stay connected (closing it would cancel its fetch)
($main::holder) = EdgeOrch::http_start(['/h']);
main::wait_count('/_frag/slow', 1);
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /h {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=1' upstream=mock ttl=60s timeout=3s 'fallback={"fb":true}';
}
location = /w {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/slow?sleep=1' upstream=mock ttl=60s timeout=200ms 'fallback={"fb":true}';
    add_header X-Cache $edge_orch_cache_status;
}
--- request
GET /w
--- response_body chomp
{"a":{"fb":true}}
--- response_headers_like
X-Edge-Orch: a=fallback:timeout
Cache-Status: edge-orch/a; .+
X-Cache: a=[A-Z]+
--- no_error_log
[alert]
[crit]



=== TEST 14: regression: a lock holder that times out: its waiters get the timeout at once, no second fetch
# Regression test for a fixed bug: the lock deadline is min(holder's timeout, lock_timeout), i.e. the
# very moment the holder's own timeout fires.  A waiter that polls between
# lock_until and the holder's timeout handler takes the lock over and
# fetches the hanging upstream again; the holder's cache_fail() then no
# longer matches lock_seq and records nothing, so every other waiter sits
# until its own timeout (3 s instead of about 0.8 s), most of them without
# a Cache-Status member (see TEST 13), and the upstream gets a second
# request.  With nginx's default timers this happens in about 1 round in 5;
# timer_resolution 100ms (coarse timers: expired poll timers of waiters run
# before the holder's timer in the same tick, and the other worker's tick
# may come first) makes it happen in every round.
# Each round: holder /h (timeout=1s) on a 3 s upstream, 20 waiters /w
# (timeout=3s) 0.2 s later.  Expected every round: waiters answered with
# a=fallback:timeout about 0.8 s after they were sent, one fetch.
--- main_config
timer_resolution 100ms;
--- init
for my $round (1 .. 3) {
    my ($h) = EdgeOrch::http_start(["/h?r=$round"]);
    select undef, undef, undef, 0.2;
    my @res = EdgeOrch::http_parallel([("/w?r=$round") x 20], timeout => 30);
    my $hr = EdgeOrch::http_read($h);
    my $count = EdgeOrch::http_get("/count?k=/_frag/x$round")->{body};
    my $late = grep { ($_->{time} // 99) > 2 } @res;
    my $ok = $count == 1 && $late == 0
             && 20 == grep { ($_->{headers}{'x-edge-orch'} // '') eq 'a=fallback:timeout' } @res;
    my %cs;
    $cs{$_->{headers}{'cache-status'} // '(none)'}++ for @res;
    Test::More::ok($ok, "TEST 14 round $round: fetches $count, waiters late $late, "
        . "Cache-Status " . join('; ', map { "$_ x$cs{$_}" } sort keys %cs));
    last unless $ok;
}
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /h {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/x$arg_r?sleep=3' upstream=mock ttl=60s timeout=1s 'fallback={"fb":true}';
}
location = /w {
    edge_orch zone=c;
    edge_orch_fragment a '/_frag/x$arg_r?sleep=3' upstream=mock ttl=60s timeout=3s 'fallback={"fb":true}';
}
--- request
GET /count?k=/_frag/none
--- response_body chomp
0
--- no_error_log
[alert]
[crit]



=== TEST 15: regression: a fragment too big for the zone does not make concurrent requests wait for each other
# Regression test for a fixed bug: see 030-cache.t TEST 24: after a body over max_fragment the entry is
# not marked pass-through, so of 20 concurrent requests one takes the fetch
# lock and the 19 others wait for its 1 s fetch, learn that it could not be
# shared and only then fetch themselves: 2 s instead of 1 s, "fwd=miss"
# for the lock holder.  Expected (docs: "marks the entry pass-through for
# one second so nobody waits for it"): 20 x "fwd=request", none waits.
--- init
my $r = EdgeOrch::http_get('/p');
Test::More::is($r->{headers}{'cache-status'}, 'edge-orch/a; fwd=miss; fwd-status=200',
               "TEST 15: first fetch, not stored");
my @res = EdgeOrch::http_parallel([('/p') x 20], timeout => 30);
my %cs;
$cs{$_->{headers}{'cache-status'} // '(none)'}++ for @res;
my @t = sort { $a <=> $b } map { $_->{time} // 99 } @res;
Test::More::is($cs{'edge-orch/a; fwd=request'} // 0, 20,
               sprintf("TEST 15: 20 x fwd=request (%s), slowest %.2f s",
                       join('; ', map { "$_ x$cs{$_}" } sort keys %cs), $t[-1]));
Test::More::cmp_ok($t[-1], '<', 1.6, "TEST 15: nobody waited for another fetch")
    unless $ENV{TEST_NGINX_USE_VALGRIND};
--- http_config
edge_orch_zone name=small:1m max_fragment=1k;
--- config
location = /p {
    edge_orch zone=small;
    edge_orch_fragment a '/_frag/big?sleep=1&size=2000' upstream=mock ttl=60s timeout=10s;
}
--- request
GET /count?k=/_frag/big
--- response_body chomp
21
--- no_error_log
[error]
[alert]
[crit]
