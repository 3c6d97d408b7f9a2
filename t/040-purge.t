# Purge by surrogate key: edge_orch_purge (hard, soft, all; header and JSON
# forms), what is refetched afterwards, visibility across workers, purges
# racing fills, bad requests, token, allow/deny, methods, reload, and one
# purge of 10,000 cached fragments.
#
# The mock upstream counts its own fetches (lua_shared_dict "counts", one
# counter per fragment URI, readable at /count?k=URI) and answers
# {"n":<that count>}, so every document shows which fragments were fetched
# again.  Its query arguments:
#   sk=...        Surrogate-Key of the answer       ct=...  its Cache-Tag
#   sleep=S       sleep S seconds (only on fetch N with sleep_on=N)
#   private_on=N  fetch N answers "Cache-Control: private"
#   fail_from=N   fetches N, N+1, ... answer 503
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;
use IO::Select ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();

edge_orch_setup(lua => 1);

# races: a fill of RACE_FILL seconds, the purge RACE_AT seconds into it;
# valgrind slows nginx down, so both grow there
$ENV{TEST_NGINX_RACE_FILL} = $ENV{TEST_NGINX_USE_VALGRIND} ? 3 : 0.5;
$ENV{TEST_NGINX_RACE_AT} = $ENV{TEST_NGINX_USE_VALGRIND} ? 1.5 : 0.15;

repeat_each(1);
workers(2);
master_on();
no_shuffle();

# ------------------------------------------------------------------------
# client helpers for --- init code (called as main::h6_*: --- init is
# evaluated in the runner's package)

our $H6_TIMEOUT = $ENV{TEST_NGINX_USE_VALGRIND} ? 60 : 10;

sub h6_conn {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => server_port(),
                                  Proto => 'tcp', Timeout => $H6_TIMEOUT)
        or die "connect 127.0.0.1:" . server_port() . ": $!";
    return $s;
}

sub h6_request_text {
    my ($method, $path, $headers, $body, $version) = @_;
    my $req = "$method $path " . ($version // 'HTTP/1.1')
              . "\r\nHost: localhost\r\n" . ($headers // '');
    $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    return $req . "\r\n" . ($body // '');
}

# read one response (Content-Length framed) from a keep-alive socket;
# $$buf keeps what was read beyond it
sub h6_read {
    my ($sock, $buf) = @_;
    my $sel = IO::Select->new($sock);
    while (1) {
        my $he = index($$buf, "\r\n\r\n");
        if ($he >= 0) {
            my $head = substr($$buf, 0, $he);
            my $cl = $head =~ /^Content-Length:\s*(\d+)/mi ? $1 : 0;
            if (length($$buf) >= $he + 4 + $cl) {
                my $body = substr($$buf, $he + 4, $cl);
                substr($$buf, 0, $he + 4 + $cl) = '';
                my %h;
                my ($sl, @lines) = split /\r\n/, $head;
                for (@lines) {
                    my ($k, $v) = /^([^:]+?)\s*:\s*(.*?)\s*$/ or next;
                    $h{lc $k} = defined $h{lc $k} ? "$h{lc $k}, $v" : $v;
                }
                my ($status) = $sl =~ m{^HTTP/\d\.\d (\d+)};
                return { status => $status // 0, headers => \%h,
                         body => $body,
                         cs => $h{'cache-status'} // '' };
            }
        }
        die "timed out reading a response\n" unless $sel->can_read($H6_TIMEOUT);
        my $n = sysread($sock, $$buf, 65536, length $$buf);
        die "connection closed: read " . length($$buf) . " bytes\n" unless $n;
    }
}

# one request on a keep-alive connection
sub h6_req {
    my ($sock, $method, $path, $headers, $body) = @_;
    print $sock h6_request_text($method, $path, $headers, $body);
    my $buf = '';
    return h6_read($sock, \$buf);
}

# one request on its own connection
sub h6_once {
    my $s = h6_conn();
    my $r = h6_req($s, @_);
    close $s;
    return $r;
}

# several GETs at once, each on its own connection (HTTP/1.0: read to EOF)
sub h6_parallel {
    my ($path, $n) = @_;
    my @s = map { h6_conn() } 1 .. $n;
    print $_ h6_request_text('GET', $path, '', undef, 'HTTP/1.0') for @s;
    my %buf = map { fileno($_) => '' } @s;
    my $sel = IO::Select->new(@s);
    my $end = Time::HiRes::time() + $H6_TIMEOUT;
    while ($sel->count && Time::HiRes::time() < $end) {
        for my $s ($sel->can_read(1)) {
            my $k = sysread($s, $buf{fileno $s}, 65536, length $buf{fileno $s});
            $sel->remove($s) unless $k;
        }
    }
    return map { my $b = $buf{fileno $_}; close $_; h6_read_string($b) } @s;
}

sub h6_read_string {
    my $b = shift;
    my $r = $b =~ /\r\n\r\n/s ? eval { h6_read(undef, \$b) } : undef;
    return $r // { status => 0, headers => {}, body => '', cs => '' };
}

# the pids of the live worker processes of our nginx
sub h6_workers {
    my $pidfile = server_root() . "/logs/nginx.pid";
    open my $fh, '<', $pidfile or die "$pidfile: $!";
    my ($master) = <$fh> =~ /(\d+)/;
    my @w;
    opendir my $d, '/proc' or die;
    for my $p (grep /^\d+$/, readdir $d) {
        open my $st, '<', "/proc/$p/stat" or next;
        my $s = <$st> // next;
        $s =~ s/^.*\)\s+//s;
        my ($state, $ppid) = split ' ', $s;
        # workers of a valgrind'ed master run valgrind too: same parent
        push @w, $p if $ppid == $master && $state ne 'Z';
    }
    return ($master, sort { $a <=> $b } @w);
}

# ------------------------------------------------------------------------

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    my $zone = $block->name =~ /10,000/ ? '64m'
             : $block->name =~ /crowd/ ? '1m' : '8m';
    $block->set_value("http_config", <<"_EOC_" . $hc);
lua_shared_dict counts 4m;
edge_orch_zone name=z:$zone;
upstream mock { server 127.0.0.1:\$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / {
        content_by_lua_block {
            local a = ngx.req.get_uri_args()
            local n = ngx.shared.counts:incr(ngx.var.uri, 1, 0)
            if a.sk then ngx.header["Surrogate-Key"] = a.sk end
            if a.ct then ngx.header["Cache-Tag"] = a.ct end
            if a.private_on and tonumber(a.private_on) == n then
                ngx.header["Cache-Control"] = "private"
            end
            if a.sleep and (not a.sleep_on or tonumber(a.sleep_on) == n) then
                ngx.sleep(tonumber(a.sleep))
            end
            if a.fail_from and n >= tonumber(a.fail_from) then
                ngx.status = 503
                ngx.print('{"down":true}')
                return
            end
            ngx.print('{"n":' .. n .. '}')
        }
    }
}
_EOC_
    my $c = $block->config // '';
    $c .= "\nlocation = /purge { edge_orch_purge zone=z; }\n"
        unless $c =~ m{location\s*=\s*/purge\s*\{};
    $block->set_value("config", $c . <<'_EOC_');
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
location = /count {
    content_by_lua_block { ngx.print(ngx.shared.counts:get(ngx.var.arg_k) or 0) }
}
_EOC_
});

run_tests();

__DATA__

=== TEST 1: purging one tag refetches exactly the fragments that carry it
a and b share "shared"; c's tag comes from Cache-Tag.  Bodies show each
fragment's fetch count: a purge of t:a refetches a only, of "shared" a and
b, of t:c (sent as Cache-Tag) c only, of an unknown tag nothing.
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a "/_frag/a?sk=t:a%20shared" upstream=mock ttl=60s;
    edge_orch_fragment b "/_frag/b?sk=t:b%20shared" upstream=mock ttl=60s;
    edge_orch_fragment c "/_frag/c?ct=t:c" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p",
 "PURGE /purge", "GET /p",
 "POST /purge\n{\"tags\":[\"shared\"]}", "GET /p",
 "PURGE /purge", "GET /p",
 "PURGE /purge", "GET /p",
 "GET /count?k=/_frag/a", "GET /count?k=/_frag/b", "GET /count?k=/_frag/c"]
--- more_headers eval
["", "",
 "Surrogate-Key: t:a", "",
 "", "",
 "Cache-Tag: t:c", "",
 "Surrogate-Key: nobody-has-this", "",
 "", "", ""]
--- response_body eval
['{"a":{"n":1},"b":{"n":1},"c":{"n":1}}', '{"a":{"n":1},"b":{"n":1},"c":{"n":1}}',
 qr/^\{"purged":\["t:a"\],"mode":"hard","generation":\d+\}\n\z/,
 '{"a":{"n":2},"b":{"n":1},"c":{"n":1}}',
 qr/^\{"purged":\["shared"\],"mode":"hard","generation":\d+\}\n\z/,
 '{"a":{"n":3},"b":{"n":2},"c":{"n":1}}',
 qr/^\{"purged":\["t:c"\],"mode":"hard","generation":\d+\}\n\z/,
 '{"a":{"n":3},"b":{"n":2},"c":{"n":2}}',
 qr/^\{"purged":\["nobody-has-this"\],"mode":"hard","generation":\d+\}\n\z/,
 '{"a":{"n":3},"b":{"n":2},"c":{"n":2}}',
 "3", "2", "2"]
--- response_headers_like eval
['Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored, edge-orch/c; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+, edge-orch/c; hit; ttl=\d+',
 'Content-Type: application/json',
 'Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; hit; ttl=\d+, edge-orch/c; hit; ttl=\d+',
 'Content-Type: application/json',
 'Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored, edge-orch/c; hit; ttl=\d+',
 'Content-Type: application/json',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+, edge-orch/c; fwd=miss; fwd-status=200; stored',
 'Content-Type: application/json',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+, edge-orch/c; hit; ttl=\d+',
 'X-None: ', 'X-None: ', 'X-None: ']
--- no_error_log
[error]
[alert]



=== TEST 2: hard purge: the next request is a miss, logged with the generation
--- init
my $r = main::h6_once('GET', '/p');
Test::More::like($r->{cs}, qr/fwd=miss/, "040 hard - first request fills");
$r = main::h6_once('GET', '/p');
Test::More::like($r->{cs}, qr/; hit; /, "040 hard - second request is a hit");
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment h "/_frag/h?sk=hard" upstream=mock ttl=60s stale=60s;
}
--- request
PURGE /purge
--- more_headers
Surrogate-Key: hard
--- response_body_like: ^\{"purged":\["hard"\],"mode":"hard","generation":\d+\}\n$
--- response_headers
Content-Type: application/json
--- error_log eval
qr/\[notice\] .*edge_orch: hard purge of 1 tags in zone "z", generation \d+/
--- no_error_log
[error]



=== TEST 3: hard purge: the request after it is a miss even with a stale window
stale=60s does not matter for a hard purge: the body is never served again.
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment h "/_frag/h?sk=hard" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /p", "PURGE /purge", "GET /p", "GET /p", "GET /count?k=/_frag/h"]
--- more_headers eval
["", "", "Surrogate-Key: hard", "", "", ""]
--- response_body eval
['{"h":{"n":1}}', '{"h":{"n":1}}',
 qr/"mode":"hard"/,
 '{"h":{"n":2}}', '{"h":{"n":2}}', "2"]
--- response_headers_like eval
['Cache-Status: edge-orch/h; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/h; hit; ttl=\d+',
 'X-None: ',
 'Cache-Status: edge-orch/h; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/h; hit; ttl=\d+',
 'X-None: ']
--- no_error_log
[error]



=== TEST 4: soft purge: served stale while exactly one refresh runs
After a soft purge six concurrent requests (both workers) all get the old
body marked "hit; fwd=stale"; the upstream sees one refresh (its second
fetch, slowed to 0.3 s), after which the new body is a fresh hit.
--- init
my $r = main::h6_once('GET', '/p');
Test::More::is($r->{body}, '{"s":{"n":1}}', "040 soft - fill");
$r = main::h6_once('POST', '/purge', '', '{"tags":["soft"],"soft":true}');
Test::More::like($r->{body}, qr/^\{"purged":\["soft"\],"mode":"soft","generation":\d+\}\n\z/,
                 "040 soft - soft purge answer");
my @r = main::h6_parallel('/p', 6);
for my $i (0 .. $#r) {
    Test::More::is($r[$i]{body}, '{"s":{"n":1}}', "040 soft - concurrent $i: old body");
    Test::More::like($r[$i]{cs}, qr/^edge-orch\/s; hit; fwd=stale; ttl=0$/,
                     "040 soft - concurrent $i: served stale");
}
Time::HiRes::sleep(0.5);
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment s "/_frag/s?sk=soft&sleep=0.3&sleep_on=2" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /count?k=/_frag/s"]
--- response_body eval
['{"s":{"n":2}}', "2"]
--- response_headers_like eval
['Cache-Status: edge-orch/s; hit; ttl=\d+', 'X-None: ']
--- no_error_log
[error]



=== TEST 5: soft mode from Fastly-Soft-Purge, from "soft" in the location, and JSON "soft": false
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment s "/_frag/s?sk=soft" upstream=mock ttl=60s stale=60s;
}
location = /purge-soft { edge_orch_purge zone=z soft; }
--- request eval
["GET /p",
 "PURGE /purge", "GET /p", "GET /p",
 "PURGE /purge-soft", "GET /p", "GET /p",
 "POST /purge-soft\n{\"tags\":[\"soft\"],\"soft\":false}", "GET /p", "GET /p",
 "PURGE /purge", "GET /p"]
--- more_headers eval
["",
 "Surrogate-Key: soft\nFastly-Soft-Purge: 1", "", "",
 "Surrogate-Key: soft", "", "",
 "", "", "",
 "Surrogate-Key: soft\nFastly-Soft-Purge: 0", ""]
--- response_body eval
['{"s":{"n":1}}',
 qr/"mode":"soft"/, '{"s":{"n":1}}', '{"s":{"n":2}}',
 qr/"mode":"soft"/, '{"s":{"n":2}}', '{"s":{"n":3}}',
 qr/"mode":"hard"/, '{"s":{"n":4}}', '{"s":{"n":4}}',
 qr/"mode":"hard"/, '{"s":{"n":5}}']
--- response_headers_like eval
['Cache-Status: edge-orch/s; fwd=miss; fwd-status=200; stored',
 'X-None: ', 'Cache-Status: edge-orch/s; hit; fwd=stale; ttl=0', 'Cache-Status: edge-orch/s; hit; ttl=\d+',
 'X-None: ', 'Cache-Status: edge-orch/s; hit; fwd=stale; ttl=0', 'Cache-Status: edge-orch/s; hit; ttl=\d+',
 'X-None: ', 'Cache-Status: edge-orch/s; fwd=miss; fwd-status=200; stored', 'Cache-Status: edge-orch/s; hit; ttl=\d+',
 'X-None: ', 'Cache-Status: edge-orch/s; fwd=miss; fwd-status=200; stored']
--- wait: 0.05
--- no_error_log
[error]



=== TEST 6: soft purge of a fragment without a stale window is a miss
# Regression test for a fixed bug: a soft purge ignores the stale= window.  The lookup serves a soft-
# purged entry while now < fresh_until + stale, i.e. until the *original*
# expiry, so a fragment without stale= (no stale serving allowed) is still
# served stale after a soft purge, and keeps being served from the purged
# body for the rest of its ttl while its upstream fails.
# Reproduce: fragment ttl=60s without stale=; GET (fill); soft purge of its
# tag; upstream answers 503 from now on; GET -> 200 with the purged body and
# "Cache-Status: ...; hit; fwd=stale", every time, for up to 60 s.
# Expected: no stale window, so a soft purge acts like a hard one: miss,
# and the fragment fails (here: fallback).
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment s "/_frag/s?sk=soft&fail_from=2" upstream=mock ttl=60s fallback=null;
}
--- request eval
["GET /p", "GET /p", "POST /purge\n{\"tags\":[\"soft\"],\"soft\":true}", "GET /p", "GET /p"]
--- response_body eval
['{"s":{"n":1}}', '{"s":{"n":1}}', qr/"mode":"soft"/, '{"s":null}', '{"s":null}']
--- response_headers_like eval
['Cache-Status: edge-orch/s; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/s; hit; ttl=\d+',
 'X-None: ',
 'Cache-Status: edge-orch/s; fwd=miss.*',
 'Cache-Status: edge-orch/s; fwd=miss.*']
--- no_error_log
[alert]



=== TEST 7: purge all, hard: every fragment is a miss, later fills are hits
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a "/_frag/a?sk=x" upstream=mock ttl=60s stale=60s;
    edge_orch_fragment b "/_frag/b" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /p", "POST /purge\n{\"all\":true}", "GET /p", "GET /p", "GET /count?k=/_frag/b"]
--- response_body eval
['{"a":{"n":1},"b":{"n":1}}', '{"a":{"n":1},"b":{"n":1}}',
 qr/^\{"purged":"all","mode":"hard","generation":\d+\}\n\z/,
 '{"a":{"n":2},"b":{"n":2}}', '{"a":{"n":2},"b":{"n":2}}', "2"]
--- response_headers_like eval
['Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+',
 'Content-Type: application/json',
 'Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+',
 'X-None: ']
--- no_error_log
[error]



=== TEST 8: purge all, soft (JSON "soft" and Fastly-Soft-Purge): every fragment stale, then refreshed
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a "/_frag/a?sk=x" upstream=mock ttl=60s stale=60s;
    edge_orch_fragment b "/_frag/b" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p",
 "POST /purge\n{\"all\":true,\"soft\":true}", "GET /p", "GET /p",
 "POST /purge\n{\"all\":true}", "GET /p", "GET /p"]
--- more_headers eval
["", "", "", "", "Fastly-Soft-Purge: 1", "", ""]
--- response_body eval
['{"a":{"n":1},"b":{"n":1}}',
 qr/^\{"purged":"all","mode":"soft","generation":\d+\}\n\z/,
 '{"a":{"n":1},"b":{"n":1}}', '{"a":{"n":2},"b":{"n":2}}',
 qr/^\{"purged":"all","mode":"soft","generation":\d+\}\n\z/,
 '{"a":{"n":2},"b":{"n":2}}', '{"a":{"n":3},"b":{"n":3}}']
--- response_headers_like eval
['Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; fwd=miss; fwd-status=200; stored',
 'X-None: ',
 'Cache-Status: edge-orch/a; hit; fwd=stale; ttl=0, edge-orch/b; hit; fwd=stale; ttl=0',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+',
 'X-None: ',
 'Cache-Status: edge-orch/a; hit; fwd=stale; ttl=0, edge-orch/b; hit; fwd=stale; ttl=0',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+']
--- wait: 0.05
--- no_error_log
[error]



=== TEST 9: a purge in one worker is seen by the other worker's very next request
Keep-alive connections pinned to each worker (told apart by X-Pid): fill
and purge on one, the next request on the other must be a miss; then the
other way round, five times each.
--- init
my (%by, @extra);
for (1 .. 200) {
    my $s = main::h6_conn();
    my $r = main::h6_req($s, 'GET', '/pid');
    my $pid = $r->{body};
    if (!$by{$pid}) { $by{$pid} = $s } else { push @extra, $s }
    last if keys %by == 2;
}
close $_ for @extra;
Test::More::is(scalar keys %by, 2, "040 workers - a connection to each of the two workers");
my ($w1, $w2) = sort keys %by;
my ($A, $B) = ($by{$w1}, $by{$w2});
for my $round (1 .. 10) {
    my ($fill, $other) = $round % 2 ? ($A, $B) : ($B, $A);
    my $r = main::h6_req($fill, 'GET', '/p');
    Test::More::like($r->{cs}, qr/^edge-orch\/x; fwd=miss; fwd-status=200; stored$/,
                     "040 workers - round $round: fill");
    $r = main::h6_req($other, 'GET', '/p');
    Test::More::like($r->{cs}, qr/^edge-orch\/x; hit; /, "040 workers - round $round: hit in the other worker");
    $r = main::h6_req($fill, 'PURGE', '/purge', "Surrogate-Key: xw\r\n");
    Test::More::is($r->{status}, 200, "040 workers - round $round: purge");
    $r = main::h6_req($other, 'GET', '/p');
    Test::More::is($r->{headers}{'x-pid'}, $fill == $A ? $w2 : $w1, "040 workers - round $round: other worker");
    Test::More::like($r->{cs}, qr/^edge-orch\/x; fwd=miss; fwd-status=200; stored$/,
                     "040 workers - round $round: miss in the other worker right after the purge");
    Test::More::is($r->{body}, '{"x":{"n":' . (2 * $round) . '}}', "040 workers - round $round: refetched");
    $r = main::h6_req($other, 'POST', '/purge', '', '{"tags":["xw"]}');
    Test::More::is($r->{status}, 200, "040 workers - round $round: purge in the other worker");
}
close $A; close $B;
--- config
add_header X-Pid $pid always;
location = /pid { return 200 $pid; }
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=xw" upstream=mock ttl=60s;
}
--- request
GET /count?k=/_frag/x
--- response_body: 20
--- no_error_log
[error]



=== TEST 10: purge and follow-up requests on fresh connections, several times
Each request is a new connection, so they land on either worker; every
request right after a purge is a miss, the one after it a hit.
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=fc" upstream=mock ttl=60s;
}
--- request eval
[ "GET /p", map { ("PURGE /purge", "GET /p", "GET /p") } 1 .. 8 ]
--- more_headers eval
[ "", map { ("Surrogate-Key: fc", "", "") } 1 .. 8 ]
--- response_body eval
[ '{"x":{"n":1}}', map { (qr/"mode":"hard"/, "{\"x\":{\"n\":" . ($_ + 1) . "}}", "{\"x\":{\"n\":" . ($_ + 1) . "}}") } 1 .. 8 ]
--- response_headers_like eval
[ 'Cache-Status: edge-orch/x; fwd=miss; fwd-status=200; stored',
  map { ('X-None: ', 'Cache-Status: edge-orch/x; fwd=miss; fwd-status=200; stored', 'Cache-Status: edge-orch/x; hit; ttl=\d+') } 1 .. 8 ]
--- no_error_log
[error]



=== TEST 11: hard purge racing a slow fill: that fill is never served as a hit
The fill (0.5 s) starts before the purge and ends after it.  Its own
client gets it (it asked before the purge), the purge answers at once,
and the next request is a miss, not a hit of the racing fill.
--- init
pipe(my $rd, my $wr) or die "pipe: $!";
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    close $rd;
    my $r = eval { main::h6_once('GET', '/p') } || { cs => "error: $@", body => '' };
    print $wr "$r->{cs}\n$r->{body}\n";
    close $wr;
    POSIX::_exit(0);
}
close $wr;
Time::HiRes::sleep($ENV{TEST_NGINX_RACE_AT});
my $t0 = Time::HiRes::time();
my $r = main::h6_once('PURGE', '/purge', "Surrogate-Key: race\r\n");
my $took = Time::HiRes::time() - $t0;
Test::More::is($r->{status}, 200, "040 race - purge during the fill");
Test::More::cmp_ok($took, '<', $ENV{TEST_NGINX_USE_VALGRIND} ? 2 : 0.3, "040 race - the purge does not wait for the fill");
waitpid($pid, 0);
my @child = <$rd>;
chomp @child;
Test::More::like($child[0] // '', qr/^edge-orch\/x; fwd=miss; fwd-status=200; stored$/, "040 race - the racing fill itself");
Test::More::is($child[1], '{"x":{"n":1}}', "040 race - the racing fill's body");
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=race&sleep=$TEST_NGINX_RACE_FILL&sleep_on=1" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"x":{"n":2}}', '{"x":{"n":2}}']
--- response_headers_like eval
['Cache-Status: edge-orch/x; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/x; hit; ttl=\d+']
--- no_error_log
[error]



=== TEST 12: soft purge racing a slow fill: that fill is served only as stale
--- init
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    eval { main::h6_once('GET', '/p') };
    POSIX::_exit(0);
}
Time::HiRes::sleep($ENV{TEST_NGINX_RACE_AT});
my $r = main::h6_once('POST', '/purge', '', '{"tags":["race"],"soft":true}');
Test::More::is($r->{status}, 200, "040 soft race - soft purge during the fill");
waitpid($pid, 0);
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=race&sleep=$TEST_NGINX_RACE_FILL&sleep_on=1" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"x":{"n":1}}', '{"x":{"n":2}}']
--- response_headers_like eval
['Cache-Status: edge-orch/x; hit; fwd=stale; ttl=0',
 'Cache-Status: edge-orch/x; hit; ttl=\d+']
--- wait: 0.05
--- no_error_log
[error]



=== TEST 13: purge all racing a slow fill: that fill is never served as a hit
--- init
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    eval { main::h6_once('GET', '/p') };
    POSIX::_exit(0);
}
Time::HiRes::sleep($ENV{TEST_NGINX_RACE_AT});
my $r = main::h6_once('POST', '/purge', '', '{"all":true}');
Test::More::is($r->{status}, 200, "040 race all - purge all during the fill");
waitpid($pid, 0);
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sleep=$TEST_NGINX_RACE_FILL&sleep_on=1" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"x":{"n":2}}', '{"x":{"n":2}}']
--- response_headers_like eval
['Cache-Status: edge-orch/x; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/x; hit; ttl=\d+']
--- no_error_log
[error]



=== TEST 14: hard purge while a stale-while-revalidate refresh is in flight: the refresh is not served as a hit
The refresh (0.5 s) started before the hard purge; after it ends the next
request is a miss.
--- init
my $r = main::h6_once('GET', '/p');
Test::More::is($r->{body}, '{"x":{"n":1}}', "040 refresh race - fill");
$r = main::h6_once('POST', '/purge', '', '{"tags":["rr"],"soft":true}');
Test::More::is($r->{status}, 200, "040 refresh race - soft purge");
pipe(my $rd, my $wr) or die "pipe: $!";
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    close $rd;
    my @r = eval { main::h6_parallel('/p', 1) };
    print $wr ($r[0] ? "$r[0]{cs}\n$r[0]{body}\n" : "error: $@\n");
    close $wr;
    POSIX::_exit(0);
}
close $wr;
Time::HiRes::sleep($ENV{TEST_NGINX_RACE_AT});
$r = main::h6_once('PURGE', '/purge', "Surrogate-Key: rr\r\n");
Test::More::is($r->{status}, 200, "040 refresh race - hard purge during the refresh");
waitpid($pid, 0);
my @child = <$rd>;
chomp @child;
Test::More::is($child[0], 'edge-orch/x; hit; fwd=stale; ttl=0', "040 refresh race - stale answer that started the refresh");
Test::More::is($child[1], '{"x":{"n":1}}', "040 refresh race - its body");
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=rr&sleep=0.5&sleep_on=2" upstream=mock ttl=60s stale=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"x":{"n":3}}', '{"x":{"n":3}}']
--- response_headers_like eval
['Cache-Status: edge-orch/x; fwd=miss; fwd-status=200; stored',
 'Cache-Status: edge-orch/x; hit; ttl=\d+']
--- no_error_log
[error]



=== TEST 15: purge racing a fill that started on the pass path: never served as a hit
# Regression test for a fixed bug: a fill on the pass path is stamped when it is stored, not when it
# started, so it survives a purge that happened while it was in flight.
# cache_store() with seq 0 (fetches started as LOOKUP_PASS: within 1 s of an
# uncacheable answer, or after a waited-for fetch that could not be shared)
# sets node->seq = ++sh->seq at store time.
# Reproduce: fragment ttl=60s whose upstream answers "Cache-Control:
# private" once, then (0.5 s later) a cacheable body with Surrogate-Key
# race.  GET (private, not stored); GET (starts the pass fetch); 0.15 s
# later PURGE race -> 200; after the fetch ends, GET -> "hit" with the
# body of the fetch that started before the purge.
--- init
my $r = main::h6_once('GET', '/p');
Test::More::like($r->{cs}, qr/^edge-orch\/x; fwd=miss; fwd-status=200$/, "040 pass race - uncacheable first answer");
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    eval { main::h6_once('GET', '/p') };
    POSIX::_exit(0);
}
Time::HiRes::sleep($ENV{TEST_NGINX_RACE_AT});
$r = main::h6_once('PURGE', '/purge', "Surrogate-Key: race\r\n");
Test::More::is($r->{status}, 200, "040 pass race - purge during the fill");
waitpid($pid, 0);
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=race&private_on=1&sleep=0.5&sleep_on=2" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /count?k=/_frag/x"]
--- response_body eval
[qr/^\{"x":\{"n":3\}\}\z/, "3"]
--- response_headers_like eval
['Cache-Status: edge-orch/x; fwd=(miss|request).*', 'X-None: ']
--- no_error_log
[error]



=== TEST 16: bad purge requests: 400 with a JSON error, and nothing is purged
Every request names t1 (the tag of the cached fragment) next to its fault;
the fragment is still a hit afterwards.
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=t1" upstream=mock ttl=60s;
}
--- request eval
my $long = "a" x 1025;
my $many = CORE::join ",", map { "\"t$_\"" } 1 .. 257;
["GET /p",
 "POST /purge",
 "PURGE /purge",
 "POST /purge\n{\"tags\":[]}",
 "POST /purge\n{\"all\":false}",
 "POST /purge\n{\"tags\":[\"t1\"",
 "POST /purge\nnot json",
 "POST /purge\n[\"t1\"]",
 "POST /purge\n\"t1\"",
 "POST /purge\n{\"tags\":[\"t1\"],\"extra\":1}",
 "POST /purge\n{\"tags\":\"t1\"}",
 "POST /purge\n{\"tags\":[\"t1\",2]}",
 "POST /purge\n{\"tags\":[\"t1\",null]}",
 "POST /purge\n{\"tags\":[\"t1\",\"two words\"]}",
 "POST /purge\n{\"tags\":[\"t1\",\"ctl\\u0001\"]}",
 "POST /purge\n{\"tags\":[\"t1\",\"nul\\u0000\"]}",
 "POST /purge\n{\"tags\":[\"t1\",\"caf\\u00e9\"]}",
 "POST /purge\n{\"tags\":[\"t1\",\"\"]}",
 "POST /purge\n{\"tags\":[\"t1\",\"$long\"]}",
 "POST /purge\n{\"tags\":[\"t1\",$many]}",
 "POST /purge\n{\"all\":true,\"tags\":[\"t1\"]}",
 "POST /purge\n{\"all\":true}",
 "POST /purge\n{\"tags\":[\"t1\"],\"soft\":\"yes\"}",
 "POST /purge\n{\"tags\":[\"t1\"],\"tags\":[\"t1\"]}",
 "PURGE /purge",
 "PURGE /purge",
 "PURGE /purge",
 "GET /p"]
--- more_headers eval
my $long = "a" x 1025;
my $many = CORE::join " ", map { "t$_" } 1 .. 257;
["", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
 "Surrogate-Key: t1", "", "",
 "Surrogate-Key: t1 caf\xc3\xa9",
 "Surrogate-Key: t1 $long",
 "Surrogate-Key: $many",
 ""]
--- error_code eval
[200, (400) x 26, 200]
--- response_body eval
['{"x":{"n":1}}',
 qq/{"error":"no tags: send them in the tag header or as {\\"tags\\": [...]}"}\n/,
 qq/{"error":"no tags: send them in the tag header or as {\\"tags\\": [...]}"}\n/,
 qq/{"error":"no tags: send them in the tag header or as {\\"tags\\": [...]}"}\n/,
 qq/{"error":"no tags: send them in the tag header or as {\\"tags\\": [...]}"}\n/,
 qr/^\{"error":"invalid JSON: [^"\n]+ at line 1 column \d+"\}\n\z/,
 qq/{"error":"invalid JSON: '[' or '{' expected near 'not' at line 1 column 3"}\n/,
 qq/{"error":"the body must be a JSON object"}\n/,
 qr/^\{"error":"invalid JSON: '\[' or '\{' expected near '\\"t1\\"' at line 1 column \d+"\}\n\z/,
 qq/{"error":"unknown key \\"extra\\" (expected tags, soft or all)"}\n/,
 qq/{"error":"\\"tags\\" must be an array of strings"}\n/,
 qq/{"error":"\\"tags\\" must be an array of strings"}\n/,
 qq/{"error":"\\"tags\\" must be an array of strings"}\n/,
 qq/{"error":"tags are visible ASCII only, without spaces"}\n/,
 qq/{"error":"tags are visible ASCII only, without spaces"}\n/,
 qr/^\{"error":"invalid JSON: \\\\u0000 is not allowed without JSON_ALLOW_NUL.* at line 1 column \d+"\}\n\z/,
 qq/{"error":"tags are visible ASCII only, without spaces"}\n/,
 qq/{"error":"a tag must be 1 to 1024 bytes long"}\n/,
 qq/{"error":"a tag must be 1 to 1024 bytes long"}\n/,
 qq/{"error":"more than 256 tags in one purge"}\n/,
 qq/{"error":"\\"all\\" and tags exclude each other"}\n/,
 qq/{"error":"\\"all\\" and tags exclude each other"}\n/,
 qq/{"error":"\\"soft\\" must be true or false"}\n/,
 qr/^\{"error":"invalid JSON: duplicate object key near '\\"tags\\"' at line 1 column \d+"\}\n\z/,
 qq/{"error":"tags are visible ASCII only, without spaces"}\n/,
 qq/{"error":"a tag must be 1 to 1024 bytes long"}\n/,
 qq/{"error":"more than 256 tags in one purge"}\n/,
 '{"x":{"n":1}}']
--- response_headers_like eval
['Cache-Status: edge-orch/x; fwd=miss; fwd-status=200; stored',
 (('Content-Type: application/json') x 26),
 'Cache-Status: edge-orch/x; hit; ttl=\d+']
--- no_error_log
[error]
[alert]



=== TEST 17: a body over 64 KB gets 413 and nothing is purged, 64 KB exactly is fine
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=t1" upstream=mock ttl=60s;
}
--- request eval
my $pad = ' ' x (65536 - length('{"tags":["t1"]}'));
my $big = '{"tags":["t1"]' . $pad . ' }';
my $ok = '{"tags":["t2"]' . $pad . '}';
["GET /p",
 "POST /purge\n$big",
 "GET /p",
 "POST /purge\n$ok",
 "GET /p"]
--- error_code eval
[200, 413, 200, 200, 200]
--- response_body eval
['{"x":{"n":1}}',
 qq/{"error":"body larger than 64k"}\n/,
 '{"x":{"n":1}}',
 qr/^\{"purged":\["t2"\],"mode":"hard","generation":\d+\}\n\z/,
 '{"x":{"n":1}}']
--- no_error_log
[error]



=== TEST 18: a chunked body over 64 KB gets 413 once read, and nothing is purged
--- init
my $r = main::h6_once('GET', '/p');
Test::More::is($r->{body}, '{"x":{"n":1}}', "040 chunked - fill");
my $body = '{"tags":["t1"]' . (' ' x 70000) . '}';
my $s = main::h6_conn();
print $s "POST /purge HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
       . sprintf("%x\r\n%s\r\n0\r\n\r\n", length $body, $body);
my $buf = '';
$r = main::h6_read($s, \$buf);
close $s;
Test::More::is($r->{status}, 413, "040 chunked - chunked 70 KB body: 413");
Test::More::is($r->{body}, qq/{"error":"body larger than 64k"}\n/, "040 chunked - chunked 70 KB body: error");
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=t1" upstream=mock ttl=60s;
}
--- request
GET /p
--- response_body chomp
{"x":{"n":1}}
--- response_headers_like
Cache-Status: edge-orch/x; hit; ttl=\d+



=== TEST 19: tags are JSON-escaped in the answer; header and body tags add up
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=t1" upstream=mock ttl=60s;
}
--- request eval
["POST /purge\n{\"tags\":[\"q\\\"uote\",\"back\\\\slash\",\"t1\"]}",
 "PURGE /purge\n{\"tags\":[\"j1\"]}"]
--- more_headers eval
["", "Surrogate-Key: h1 h2\nCache-Tag: c1, c2,c3"]
--- response_body eval
[qr/^\{"purged":\["q\\"uote","back\\\\slash","t1"\],"mode":"hard","generation":\d+\}\n\z/,
 qr/^\{"purged":\["j1","h1","h2","c1","c2","c3"\],"mode":"hard","generation":\d+\}\n\z/]
--- no_error_log
[error]



=== TEST 20: token: missing, wrong, wrong length, other scheme -> 403 and nothing purged; right -> 200
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=t1" upstream=mock ttl=60s;
}
location = /purge { edge_orch_purge zone=z token=s3cr3t-0123456789abcdef; }
--- request eval
["GET /p",
 "PURGE /purge", "PURGE /purge", "PURGE /purge", "PURGE /purge", "PURGE /purge", "PURGE /purge",
 "GET /p",
 "PURGE /purge", "GET /p", "PURGE /purge", "GET /p"]
--- more_headers eval
["",
 "Surrogate-Key: t1",
 "Surrogate-Key: t1\nAuthorization: Bearer s3cr3t-0123456789abcdeX",
 "Surrogate-Key: t1\nAuthorization: Bearer s3cr3t-0123456789abcde",
 "Surrogate-Key: t1\nAuthorization: Bearer s3cr3t-0123456789abcdef0",
 "Surrogate-Key: t1\nAuthorization: Basic s3cr3t-0123456789abcdef",
 "Surrogate-Key: t1\nAuthorization: s3cr3t-0123456789abcdef",
 "",
 "Surrogate-Key: t1\nAuthorization: Bearer s3cr3t-0123456789abcdef", "",
 "Surrogate-Key: t1\nAuthorization: bearer s3cr3t-0123456789abcdef", ""]
--- error_code eval
[200, 403, 403, 403, 403, 403, 403, 200, 200, 200, 200, 200]
--- response_body eval
['{"x":{"n":1}}',
 (qq/{"error":"missing or wrong token"}\n/) x 6,
 '{"x":{"n":1}}',
 qr/"purged":\["t1"\]/, '{"x":{"n":2}}',
 qr/"purged":\["t1"\]/, '{"x":{"n":3}}']
--- no_error_log
[error]



=== TEST 21: a refused token is logged as a warning
--- config
location = /purge { edge_orch_purge zone=z token=s3cr3t-0123456789abcdef; }
--- request
PURGE /purge
--- more_headers
Surrogate-Key: t1
Authorization: Bearer nope
--- error_code: 403
--- response_body
{"error":"missing or wrong token"}
--- error_log
edge_orch: purge refused: missing or wrong token
--- no_error_log
purge of



=== TEST 22: token= shorter than 16 characters is a configuration error
--- config
location = /purge { edge_orch_purge zone=z token=short; }
--- must_die
--- error_log
[emerg]
"token=" must be at least 16 characters long



=== TEST 23: deny 127.0.0.1 -> 403 from nginx, nothing purged; allow 127.0.0.1 -> purged
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=t1" upstream=mock ttl=60s;
}
location = /purge-denied { deny 127.0.0.1; allow all; edge_orch_purge zone=z; }
location = /purge { allow 127.0.0.1; deny all; edge_orch_purge zone=z; }
--- request eval
["GET /p", "PURGE /purge-denied", "POST /purge-denied\n{\"all\":true}", "GET /p", "PURGE /purge", "GET /p"]
--- more_headers eval
["", "Surrogate-Key: t1", "", "", "Surrogate-Key: t1", ""]
--- error_code eval
[200, 403, 403, 200, 200, 200]
--- response_body eval
['{"x":{"n":1}}', qr/403 Forbidden/, qr/403 Forbidden/, '{"x":{"n":1}}', qr/"purged":\["t1"\]/, '{"x":{"n":2}}']



=== TEST 24: other methods get 405 with Allow: PURGE, POST
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/x?sk=t1" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /purge", "HEAD /purge", "DELETE /purge", "PUT /purge\n{\"all\":true}", "OPTIONS /purge", "GET /p"]
--- more_headers eval
["", "Surrogate-Key: t1", "Surrogate-Key: t1", "Surrogate-Key: t1", "", "", ""]
--- error_code eval
[200, 405, 405, 405, 405, 405, 200]
--- response_body eval
['{"x":{"n":1}}',
 qq/{"error":"use PURGE or POST"}\n/, "",
 qq/{"error":"use PURGE or POST"}\n/, qq/{"error":"use PURGE or POST"}\n/, qq/{"error":"use PURGE or POST"}\n/,
 '{"x":{"n":1}}']
--- response_headers_like eval
['Cache-Status: edge-orch/x; fwd=miss; fwd-status=200; stored',
 "Allow: PURGE, POST\nContent-Type: application/json",
 "Allow: PURGE, POST\nContent-Type: application/json",
 "Allow: PURGE, POST\nContent-Type: application/json",
 "Allow: PURGE, POST\nContent-Type: application/json",
 "Allow: PURGE, POST\nContent-Type: application/json",
 'Cache-Status: edge-orch/x; hit; ttl=\d+']
--- no_error_log
[error]



=== TEST 25: purges survive a reload (kill -HUP): purged tag refetched, the rest still cached
--- init
my $r = main::h6_once('GET', '/p');
Test::More::is($r->{body}, '{"a":{"n":1},"b":{"n":1}}', "040 reload - fill");
$r = main::h6_once('PURGE', '/purge', "Surrogate-Key: before\r\n");
Test::More::is($r->{status}, 200, "040 reload - purge before the reload");
my ($g1) = $r->{body} =~ /"generation":(\d+)/;
my ($master, @old) = main::h6_workers();
Test::More::is(scalar @old, 2, "040 reload - two workers before the reload");
kill 'HUP', $master or die "kill HUP $master: $!";
my %old = map { $_ => 1 } @old;
my @new;
my $end = Time::HiRes::time() + ($ENV{TEST_NGINX_USE_VALGRIND} ? 120 : 15);
while (Time::HiRes::time() < $end) {
    (undef, @new) = main::h6_workers();
    last if @new == 2 && !grep { $old{$_} } @new;
    Time::HiRes::sleep(0.05);
}
Test::More::ok(@new == 2 && !grep({ $old{$_} } @new), "040 reload - old workers replaced by two new ones (@old -> @new)");
Time::HiRes::sleep(0.2);
$r = main::h6_once('PURGE', '/purge', "Surrogate-Key: unrelated\r\n");
my ($g2) = $r->{body} =~ /"generation":(\d+)/;
Test::More::cmp_ok($g2 // 0, '>', $g1 // 0, "040 reload - generations go on after the reload");
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a "/_frag/a?sk=before" upstream=mock ttl=60s;
    edge_orch_fragment b "/_frag/b?sk=kept" upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"a":{"n":2},"b":{"n":1}}', '{"a":{"n":2},"b":{"n":1}}']
--- response_headers_like eval
['Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored, edge-orch/b; hit; ttl=\d+',
 'Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; hit; ttl=\d+']
--- no_error_log
[error]
[alert]



=== TEST 26: purge records do not crowd out the cache (1 MB zone)
# Regression test for a fixed bug: tag purge records are never freed while the zone has a cached entry
# left to evict: ngx_http_edge_orch_alloc() evicts LRU entries first and
# drops tag records (raising the floors) only when no entry is left.  Once
# many distinct tags were purged the zone is full of records and every new
# fill evicts another live entry: the cache holds only a few entries, for
# good (records never expire).  Here every record is older than every
# entry, so dropping records would cost nothing.
# Reproduce: edge_orch_zone name=z:1m; 40 purges of 256 distinct tags
# nobody carries ({"tags":["unrelated-1-0",...]}); GET 50 distinct keys
# (each a miss); GET the first key again -> a miss (evicted by the later
# fills), expected a hit.
--- init
for my $i (1 .. 40) {
    my $json = '{"tags":[' . join(',', map { "\"unrelated-$i-$_\"" } 1 .. 256) . ']}';
    my $r = main::h6_once('POST', '/purge', '', $json);
    die "purge $i: $r->{status} $r->{body}" unless $r->{status} == 200;
}
for my $k (1 .. 50) {
    my $r = main::h6_once('GET', "/c?k=$k");
    Test::More::like($r->{cs}, qr/fwd=miss/, "040 crowd - fill $k") if $k % 10 == 0;
}
--- config
location = /c {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/c?sk=crowd" upstream=mock ttl=600s key=$arg_k;
}
--- request eval
["GET /c?k=1", "GET /c?k=25", "GET /c?k=50"]
--- response_headers_like eval
['Cache-Status: edge-orch/x; hit; ttl=\d+', 'Cache-Status: edge-orch/x; hit; ttl=\d+', 'Cache-Status: edge-orch/x; hit; ttl=\d+']
--- no_error_log
[error]
[alert]



=== TEST 27: 10,000 fragments under one tag are purged by one request
10,000 distinct keys (key=$arg_k) are filled by pipelined keep-alive
requests; a sample is checked to be cached; one PURGE of the tag; then a
sample of 40 keys are all misses, and a key filled after the purge is a hit
on its second request.  Under valgrind 1,000 keys are filled instead.
--- init
my $N = $ENV{TEST_NGINX_USE_VALGRIND} ? 1000 : 10000;
my ($s, $buf, $misses, $bad) = (undef, '', 0, 0);
my $depth = 50;
my $t0 = Time::HiRes::time();
for (my $i = 0; $i < $N; $i += $depth) {
    if ($i % 500 == 0) {       # below nginx's keepalive_requests 1000
        close $s if $s;
        $s = main::h6_conn();
        $buf = '';
    }
    my $last = $i + $depth - 1 < $N - 1 ? $i + $depth - 1 : $N - 1;
    print $s join '', map { main::h6_request_text('GET', "/bulk?k=$_") } $i .. $last;
    for ($i .. $last) {
        my $r = main::h6_read($s, \$buf);
        $bad++ unless $r->{status} == 200;
        $misses++ if $r->{cs} =~ /^edge-orch\/x; fwd=miss; fwd-status=200; stored$/;
    }
}
close $s;
Test::More::is($bad, 0, "040 10k - $N fills answered 200");
Test::More::is($misses, $N, "040 10k - $N fills stored");
Test::More::note(sprintf "040 10k - filled %d keys in %.1f s", $N, Time::HiRes::time() - $t0);
my @sample = map { ($_ * 7919) % $N } 1 .. 20;
my %in = map { $_ => 1 } @sample;
my @sample2 = grep { !$in{$_}++ } map { ($_ * 104729 + 13) % $N } 1 .. 40;
splice @sample2, 20;
my $hits = grep { main::h6_once('GET', "/bulk?k=$_")->{cs} =~ /; hit; / } @sample;
Test::More::is($hits, 20, "040 10k - 20 sampled keys are cached before the purge");
$t0 = Time::HiRes::time();
my $r = main::h6_once('PURGE', '/purge', "Surrogate-Key: bulk\r\n");
my $took = Time::HiRes::time() - $t0;
Test::More::like($r->{body}, qr/^\{"purged":\["bulk"\],"mode":"hard","generation":\d+\}\n\z/, "040 10k - one purge");
Test::More::note(sprintf "040 10k - the purge of %d fragments took %.1f ms", $N, $took * 1000);
Test::More::cmp_ok($took, '<', $ENV{TEST_NGINX_USE_VALGRIND} ? 5 : 0.5, "040 10k - the purge is quick");
my @after = map { main::h6_once('GET', "/bulk?k=$_")->{cs} } @sample, @sample2;
my @not_miss = grep { !/^edge-orch\/x; fwd=miss; fwd-status=200; stored$/ } @after;
Test::More::is(scalar @not_miss, 0, "040 10k - 40 sampled keys are misses after the purge (@not_miss)");
$r = main::h6_once('GET', "/bulk?k=new");
Test::More::like($r->{cs}, qr/fwd=miss/, "040 10k - a new key after the purge: miss");
--- config
location = /bulk {
    edge_orch zone=z;
    edge_orch_fragment x "/_frag/bulk?sk=bulk" upstream=mock ttl=600s key=$arg_k;
}
--- request
GET /bulk?k=new
--- response_headers_like
Cache-Status: edge-orch/x; hit; ttl=\d+
--- timeout: 10
--- no_error_log
[error]
[alert]
[crit]
