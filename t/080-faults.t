# Fault injection (issue 5): upstreams that reset, hang, trickle, send
# hostile bodies or headers; a zone too small for one fragment; many
# entries expiring together; pipelined requests; the routing table
# rewritten by the CLI in a tight loop under load; the LMDB reader table
# exhausted; a worker killed with SIGKILL while serving.  Every block
# asserts what the client sees and that no worker crashed.
#
# Faults that the other files already cover are listed with their tests
# in docs/reliability.md.
#
# The misbehaving upstream is a forked Perl server (one process per
# connection) on a port chosen when this file starts, so that it can send
# exactly the bytes a test needs, including a TCP reset.  Paths:
#   /ok?n=<id>        {"ok":<id>}
#   /reset            headers (Content-Length: 100) and 10 bytes, then RST
#   /hang             reads the request, never answers
#   /trickle          headers at once, then one body byte every 50 ms
#   /deep             [[[...]]] nested 100,000 levels (200,000 bytes)
#   /nonutf8          {"a":"\xff\xfe"}
#   /dup              duplicate Content-Type, Cache-Control, Surrogate-Key
#   /dupcl            two different Content-Length headers
#   /hugeheader       one 64 KB header line
#   /manyheaders      2,000 header lines
#   /big?size=<n>     {"pad":"xxx..."} with n bytes of padding
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;
use IO::Socket::INET ();
use Socket qw(SOL_SOCKET SO_LINGER);
use POSIX ();
use JSON::PP ();

edge_orch_setup();

repeat_each(1);
workers(2);
master_on();
no_shuffle();
worker_connections(1024);
log_level('info');

our $MockPid;

$ENV{TEST_NGINX_LOOP_ROUTES} = routes_dir(<<'_JSON_');
{
  "schema": 1,
  "routes": [ { "service": "cms", "region": "*", "upstream": "mock" } ]
}
_JSON_

my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Proto => 'tcp', ReuseAddr => 1,
                                   Listen => 128)
    or die "mock listen: $!";
$ENV{TEST_NGINX_MOCK_PORT} = $listen->sockport;

sub mock_reply {
    my ($c, $path) = @_;
    my $ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";

    if ($path =~ m{^/ok(?:\?n=(\d+))?}) {
        my $b = '{"ok":' . ($1 // 1) . '}';
        print $c $ok, "Content-Length: ", length $b, "\r\n\r\n", $b;

    } elsif ($path =~ m{^/reset}) {
        print $c $ok, "Content-Length: 100\r\n\r\n", '{"a":[1,2,';
        select undef, undef, undef, 0.05;
        setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));

    } elsif ($path =~ m{^/hang}) {
        sleep 30;

    } elsif ($path =~ m{^/trickle}) {
        my $b = '{"pad":"' . ('x' x 190) . '"}';
        print $c $ok, "Content-Length: ", length $b, "\r\n\r\n";
        for my $ch (split //, $b) {
            print $c $ch or last;
            select undef, undef, undef, 0.05;
        }

    } elsif ($path =~ m{^/deep}) {
        my $b = ('[' x 100000) . (']' x 100000);
        print $c $ok, "Content-Length: ", length $b, "\r\n\r\n", $b;

    } elsif ($path =~ m{^/nonutf8}) {
        my $b = "{\"a\":\"\xff\xfe\"}";
        print $c $ok, "Content-Length: ", length $b, "\r\n\r\n", $b;

    } elsif ($path =~ m{^/dupcl}) {
        print $c $ok, "Content-Length: 8\r\nContent-Length: 9\r\n\r\n",
                 '{"d":10}';

    } elsif ($path =~ m{^/dup}) {
        my $b = '{"dup":true}';
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                 "Content-Type: text/html\r\n",
                 "Cache-Control: max-age=60\r\nCache-Control: private\r\n",
                 "Surrogate-Key: d1 d2\r\nSurrogate-Key: d2 d3\r\n",
                 "X-Same: 1\r\n" x 50,
                 "Content-Length: ", length $b, "\r\n\r\n", $b;

    } elsif ($path =~ m{^/hugeheader}) {
        my $b = '{"huge":true}';
        print $c $ok, "X-Huge: ", 'h' x 65536, "\r\n",
                 "Content-Length: ", length $b, "\r\n\r\n", $b;

    } elsif ($path =~ m{^/manyheaders}) {
        my $b = '{"many":true}';
        print $c $ok, (map { "X-H$_: $_\r\n" } 1 .. 2000),
                 "Content-Length: ", length $b, "\r\n\r\n", $b;

    } elsif ($path =~ m{^/big\?size=(\d+)}) {
        my $b = '{"pad":"' . ('x' x $1) . '"}';
        print $c $ok, "Content-Length: ", length $b, "\r\n\r\n", $b;

    } else {
        print $c "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    }
}

$MockPid = fork // die "fork: $!";

if ($MockPid == 0) {
    $SIG{CHLD} = 'IGNORE';
    @SIG{qw(INT TERM HUP)} = ('DEFAULT') x 3;
    while (my $c = $listen->accept) {
        my $pid = fork;
        if (defined $pid && $pid == 0) {
            $c->autoflush(1);
            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                my $n = sysread($c, my $buf, 65536) or last;
                $req .= $buf;
            }
            my ($path) = $req =~ m{^GET (?:/_frag)?(\S+)};
            eval { mock_reply($c, $path // '/') };
            close $c;
            POSIX::_exit(0);
        }
        close $c;
    }
    POSIX::_exit(0);
}

close $listen;

END {
    local $?;
    if ($MockPid && $$ != $MockPid) {
        kill 'TERM', $MockPid;
        waitpid $MockPid, 0;
    }
}

# parse a response body as JSON: 1 if it is a JSON document
sub is_json {
    my $b = shift // '';
    return eval { JSON::PP->new->allow_nonref->decode($b); 1 } ? 1 : 0;
}

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
upstream mock { server 127.0.0.1:$TEST_NGINX_MOCK_PORT; }
upstream mock2 { server 127.0.0.1:$TEST_NGINX_MOCK_PORT; }
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location /_frag/ {
    internal;
    proxy_pass http://$edge_orch_upstream;
    proxy_read_timeout 10s;
}
_EOC_
    for my $sec (qw(no_error_log)) {
        next if defined $block->$sec;
        $block->set_value($sec, "[alert]\n[crit]\n[emerg]\nsignal 11\n");
    }
});

run_tests();

__DATA__

=== TEST 1: an upstream that resets the connection mid-body: fallback, no crash
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/reset upstream=mock 'fallback={"reset":true}';
    edge_orch_fragment b /_frag/ok upstream=mock;
}
--- request
GET /p
--- response_body chomp
{"a":{"reset":true},"b":{"ok":1}}
--- response_headers
X-Edge-Orch: a=fallback:error; b=ok
--- error_log eval
qr/\[error\] .*(?:Connection reset by peer|upstream prematurely closed)/



=== TEST 2: an upstream that never sends headers: timeout at the fragment's deadline
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/hang upstream=mock timeout=$TEST_NGINX_SHORT_TIMEOUT optional;
    edge_orch_fragment b /_frag/ok upstream=mock;
}
--- request
GET /p
--- response_body chomp
{"b":{"ok":1}}
--- response_headers
X-Edge-Orch: a=omitted:timeout; b=ok
--- timeout: 5



=== TEST 3: an upstream that trickles its body slower than the timeout: the deadline still holds
The body would take ten seconds; the fragment's timeout is 300 ms although
every single read succeeds well within proxy_read_timeout.
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/trickle upstream=mock timeout=300ms fallback=null;
    edge_orch_fragment b /_frag/ok upstream=mock;
}
--- init
my $r = EdgeOrch::http_get('/p', timeout => 5);
Test::More::ok(!$r->{error} && $r->{time} < 2,
               "TEST 3: answered in " . sprintf('%.2f', $r->{time} // -1) . " s");
--- request
GET /p
--- response_body chomp
{"a":null,"b":{"ok":1}}
--- response_headers
X-Edge-Orch: a=fallback:timeout; b=ok
--- timeout: 5



=== TEST 4: 100,000 levels of nesting are invalid JSON, not a stack overflow
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/deep upstream=mock optional;
    edge_orch_fragment b /_frag/ok upstream=mock;
}
--- request
GET /p
--- response_body chomp
{"b":{"ok":1}}
--- response_headers
X-Edge-Orch: a=omitted:invalid; b=ok



=== TEST 5: a body that is not UTF-8 is invalid and never passed on
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/nonutf8 upstream=mock 'fallback="utf8"';
}
--- request
GET /p
--- response_body chomp
{"a":"utf8"}
--- response_headers
X-Edge-Orch: a=fallback:invalid



=== TEST 6: duplicate headers: the stricter Cache-Control wins (not stored), both tag lines count
The second request comes within the 1 s pass window of the first, not
stored, answer.
--- http_config
edge_orch_zone name=z:1m;
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a /_frag/dup upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"a":{"dup":true}}', '{"a":{"dup":true}}']
--- response_headers eval
["Surrogate-Key: d1 d2 d3\nCache-Status: edge-orch/a; fwd=miss; fwd-status=200",
 "Surrogate-Key: d1 d2 d3\nCache-Status: edge-orch/a; fwd=request"]



=== TEST 7: two different Content-Length headers: the fragment fails, the page does not
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/dupcl upstream=mock fallback=0;
    edge_orch_fragment b /_frag/ok upstream=mock;
}
--- request
GET /p
--- response_body chomp
{"a":0,"b":{"ok":1}}
--- response_headers_like
X-Edge-Orch: a=fallback:(?:status|error); b=ok
--- error_log eval
qr/upstream sent duplicate header line|upstream prematurely closed connection/



=== TEST 8: a 64 KB header line and 2,000 header lines from upstreams
A header over proxy_buffer_size fails the fragment ("too big header");
many small ones fit and are ignored.
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/hugeheader upstream=mock 'fallback={"huge":false}';
    edge_orch_fragment b /_frag/manyheaders upstream=mock fallback=0;
}
location = /_frag/manyheaders {
    internal;
    proxy_pass http://$edge_orch_upstream;
    proxy_buffer_size 64k;
    proxy_buffers 4 64k;
    proxy_busy_buffers_size 128k;
}
--- request
GET /p
--- response_body chomp
{"a":{"huge":false},"b":{"many":true}}
--- response_headers_like
X-Edge-Orch: a=fallback:(?:status|error); b=ok
--- error_log
upstream sent too big header



=== TEST 9: regression: a fragment bigger than the zone is served, not stored, and evicts nothing
A 64k zone (its minimum) with max_fragment=1m and a 200 KB fragment: the
attempt to store it used to evict every other entry (and the purge
records) first, so "b" was never a hit.
--- http_config
edge_orch_zone name=z:64k max_fragment=1m;
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a /_frag/big?size=200000 upstream=mock ttl=60s;
    edge_orch_fragment b /_frag/ok upstream=mock ttl=60s;
}
--- request eval
["GET /p", "GET /p"]
--- response_body eval
['{"a":{"pad":"' . ('x' x 200000) . '"},"b":{"ok":1}}',
 '{"a":{"pad":"' . ('x' x 200000) . '"},"b":{"ok":1}}']
--- response_headers_like eval
["Cache-Status: edge-orch/a; fwd=miss; fwd-status=200, edge-orch/b; fwd=miss; fwd-status=200; stored",
 "Cache-Status: edge-orch/a; fwd=(?:request|miss; fwd-status=200), edge-orch/b; hit; ttl=\\d+"]
--- no_error_log
[alert]
[crit]
[emerg]
signal 11
ngx_slab_alloc



=== TEST 10: 32 fragments expiring at the same moment, then 40 concurrent requests
--- http_config
edge_orch_zone name=z:4m;
--- config eval
"location = /p {\n    edge_orch zone=z;\n"
. CORE::join('', map { "    edge_orch_fragment f$_ /_frag/ok?n=$_ upstream=mock ttl=1s"
                       . ($_ % 16 > 8 || $_ % 16 == 0 ? ' stale=10s' : '') . ";\n" } 1 .. 32)
. "}\n"
--- init
my $exp = '{' . join(',', map { "\"f$_\":{\"ok\":$_}" } 1 .. 32) . '}';
for my $round (1 .. 3) {
    my @res = EdgeOrch::http_parallel([('/p') x 40], timeout => 20);
    my @bad = grep { $_->{error} || $_->{status} != 200 || $_->{body} ne $exp
                     || ($_->{headers}{'x-edge-orch'} // '') =~ /fallback|omitted|failed/ } @res;
    Test::More::is(scalar @bad, 0, "TEST 10 round $round: 40 complete documents")
        or Test::More::diag("$bad[0]{status} " . ($bad[0]{headers}{'x-edge-orch'} // '-'));
    select undef, undef, undef, 1.1;
}
--- request
GET /p
--- response_body eval
'{' . CORE::join(',', map { "\"f$_\":{\"ok\":$_}" } 1 .. 32) . '}'
--- timeout: 10



=== TEST 11: pipelined requests on one keep-alive connection: each gets its own document
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/ok?n=$arg_n upstream=mock;
}
--- pipelined_requests eval
["GET /p?n=1", "GET /p?n=2", "GET /p?n=3", "POST /p?n=4\nbody", "GET /p?n=5"]
--- error_code eval
[200, 200, 200, 405, 200]
--- response_body_like eval
['^\{"a":\{"ok":1\}\}$', '^\{"a":\{"ok":2\}\}$', '^\{"a":\{"ok":3\}\}$', '.*',
 '^\{"a":\{"ok":5\}\}$']



=== TEST 12: the routing table rewritten by the CLI 100 times while 200 requests run
Every response is a complete 200 JSON document from one of the two
upstreams the table alternates between.
--- http_config
edge_orch_routes $TEST_NGINX_LOOP_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_frag/ok?n=$edge_orch_routes_generation upstream=mock;
    add_header X-Upstream $edge_orch_routes;
}
--- init
EdgeOrch::wait_error_log(qr{routes" generation \d+ loaded}, 2);
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    for my $i (1 .. 100) {
        EdgeOrch::routes_cli('put', $ENV{TEST_NGINX_LOOP_ROUTES}, 'cms', '*',
                             $i % 2 ? 'mock2' : 'mock');
    }
    POSIX::_exit(0);
}
my ($bad, $n, %up) = (0, 0);
for my $batch (1 .. 10) {
    for my $r (EdgeOrch::http_parallel([('/p') x 20], timeout => 20)) {
        $n++;
        $up{$r->{headers}{'x-upstream'} // '-'}++;
        next if !$r->{error} && $r->{status} == 200
                && $r->{body} =~ /^\{"cms":\{"ok":\d+\}\}$/ && main::is_json($r->{body});
        Test::More::diag("bad: " . ($r->{error} // '') . " $r->{status} $r->{body}")
            if $bad++ < 3;
    }
}
waitpid $pid, 0;
Test::More::is($?, 0, "TEST 12: 100 CLI updates succeeded");
Test::More::is($bad, 0, "TEST 12: $n responses, all 200 JSON");
Test::More::note("TEST 12 routes seen: ", join ' ', map { "$_ x$up{$_}" } sort keys %up);
--- request
GET /p
--- response_body_like eval
qr/^\{"cms":\{"ok":\d+\}\}$/
--- response_headers
X-Upstream: cms:mock
--- timeout: 30



=== TEST 13: a worker killed with SIGKILL while serving: the master respawns it, the next requests are fine
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/trickle upstream=mock timeout=2s optional;
    edge_orch_fragment b /_frag/ok upstream=mock;
}
location = /q {
    edge_orch;
    edge_orch_fragment b /_frag/ok?n=7 upstream=mock;
}
--- init
my @old = EdgeOrch::nginx_worker_pids();
Test::More::is(scalar @old, 2, "TEST 13: two workers");
my @socks = EdgeOrch::http_start([('/p') x 10]);
select undef, undef, undef, 0.3;
kill 'KILL', $old[0];
my @new;
for (1 .. 100) {
    @new = EdgeOrch::nginx_worker_pids();
    last if @new == 2 && !grep { $_ == $old[0] } @new;
    select undef, undef, undef, 0.05;
}
Test::More::is(scalar(grep { $_ != $old[0] } @new), 2, "TEST 13: respawned");
# the killed worker's clients see their connection closed; the other
# worker's get their document; nobody hangs or gets a broken body
my ($done, $closed, $bad) = (0, 0, 0);
for my $s (@socks) {
    my $r = EdgeOrch::http_read($s, timeout => 10);
    if ($r->{error}) { $bad++ }
    elsif ($r->{status} == 200 && main::is_json($r->{body})) { $done++ }
    elsif ($r->{raw} eq '') { $closed++ }
    else { $bad++ }
}
Test::More::is($bad, 0, "TEST 13: in-flight requests: $done answered, $closed closed, none hung or broken");
my @res = EdgeOrch::http_parallel([('/q') x 20]);
Test::More::is(scalar(grep { $_->{status} == 200 && $_->{body} eq '{"b":{"ok":7}}' } @res),
               20, "TEST 13: 20 requests after the respawn");
--- request
GET /q
--- response_body chomp
{"b":{"ok":7}}
--- error_log eval
qr/\[alert\] .*worker process \d+ exited on signal 9/
--- no_error_log
[crit]
[emerg]
signal 11
signal 6
--- timeout: 15
