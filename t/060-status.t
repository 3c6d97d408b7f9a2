# Observability: edge_orch_status (JSON and Prometheus), counters shared by
# the workers and kept across reloads, X-Request-Id and W3C Trace Context
# propagation to fragments, Server-Timing, log variables.
#
# Every block starts a fresh nginx (2 workers): the stats zone starts empty,
# so absolute values are known.  The checks that need several requests and
# JSON run in --- init (Perl, with the helpers below); the mock upstream
# echoes the X-Request-Id, traceparent and tracestate it received.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;
use File::Temp qw(tempdir);
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();

edge_orch_setup();

repeat_each(1);
workers(2);
master_on();
no_shuffle();
log_level('info');

my $table = <<'_JSON_';
{
  "schema": 1,
  "groups": { "JP": "apac" },
  "routes": [
    { "service": "cms", "region": "apac", "upstream": "cms_tokyo" }
  ]
}
_JSON_

my $tmp = tempdir(CLEANUP => 1);
open my $tfh, '>', "$tmp/routes.json" or die "$tmp/routes.json: $!";
print $tfh $table;
close $tfh;
routes_cli('compile', "$tmp/routes.json", "$tmp/$_") for qw(routes lkg);

$ENV{TEST_NGINX_TMP} = $tmp;

# client timeout of the helpers below
our $Timeout = $ENV{TEST_NGINX_USE_VALGRIND} ? 60 : 10;

add_block_preprocessor(sub {
    my $block = shift;
    return if defined $block->must_die;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
upstream mock { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location /_frag/bad { return 503 '{"down":true}'; }
    location /_frag/gone { return 404 '{"gone":true}'; }
    location /_frag/slow { echo_sleep 0.4; echo -n '{"slow":true}'; }
    location /_frag/slower { echo_sleep 3; echo -n '{"slower":true}'; }
    location /_frag/tagged {
        add_header Surrogate-Key "tag-a";
        return 200 '{"tagged":true}';
    }
    location /_frag/ {
        return 200 '{"rid":"$http_x_request_id","tp":"$http_traceparent","ts":"$http_tracestate"}';
    }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
location = /status { edge_orch_status; add_header X-Pid $pid always; }
_EOC_
});

run_tests();


# --------------------------------------------------------------------------
# helpers for --- init (called as main::name)

# one request on its own connection -> { status, headers => { lc name =>
# [values] }, body }; $headers: [[name, value], ...]
sub http {
    my ($method, $path, $headers, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => Test::Nginx::Socket::server_port(),
                                  Proto => 'tcp', Timeout => $Timeout)
        or die "connect: $!";
    my $req = "$method $path HTTP/1.0\r\nHost: localhost\r\n";
    $req .= "$_->[0]: $_->[1]\r\n" for @{ $headers // [] };
    $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    $req .= "\r\n" . ($body // '');
    print $s $req;
    my $raw = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read($Timeout)) {
        my $n = sysread($s, my $buf, 65536);
        last unless $n;
        $raw .= $buf;
    }
    close $s;
    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    my %res = (status => 0, headers => {}, body => $rest // '');
    my @lines = split /\r\n/, $head // '';
    my $sl = shift @lines // '';
    $res{status} = $1 if $sl =~ m{^HTTP/\d\.\d (\d+)};
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        push @{ $res{headers}{lc $k} }, $v;
    }
    return \%res;
}

sub header {
    my ($res, $name) = @_;
    my $v = $res->{headers}{lc $name};
    return $v ? join(', ', @$v) : undef;
}

sub get { return http('GET', @_) }

sub status {
    my $r = get('/status');
    die "status: HTTP $r->{status}" unless $r->{status} == 200;
    return JSON::PP::decode_json($r->{body});
}

# { "a.b.c" => leaf } of a decoded JSON document
sub flatten {
    my ($v, $prefix, $out) = @_;
    $out //= {};
    if (ref $v eq 'HASH') {
        flatten($v->{$_}, defined $prefix ? "$prefix.$_" : $_, $out)
            for keys %$v;
    } else {
        $out->{$prefix} = ref $v ? "$v" : $v;
    }
    return $out;
}

# changed leaves between two status documents, without what moves by
# itself (time, ages, free memory, duration sums and the finite buckets,
# which depend on how fast the machine is)
sub changes {
    my ($before, $after) = @_;
    my ($was, $now) = (flatten($before), flatten($after));
    my %d;
    for my $k (keys %$now) {
        next if $k =~ /^(?:time|routes\.age_seconds)$/
                || $k =~ /\.free$/
                || $k =~ /\.duration_ms\.sum$/
                || $k =~ /\.duration_ms\.le\.(?!\+Inf)/;
        my $old = $was->{$k} // 0;
        $d{$k} = $now->{$k} - $old if $now->{$k} ne $old;
    }
    return \%d;
}

# strict reader of the Prometheus text format 0.0.4 -> (errors, series)
sub prom_parse {
    my ($text) = @_;
    my (@err, %series, %type, %help, %nsamples, %closed, %hist);
    my $cur;
    my $name_re = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
    my $num_re = qr/[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN/;

    push @err, "empty exposition" if $text eq '';
    push @err, "no final line feed" unless $text =~ /\n\z/;

    my $ln = 0;
    for my $line (split /\n/, $text) {
        $ln++;
        my $at = "line $ln ($line)";

        if ($line eq '') {
            push @err, "$at: empty line";
            next;
        }

        if ($line =~ /^#/) {
            my ($kw, $fam, $rest) = $line =~ /^# (HELP|TYPE) ($name_re) (.*)$/
                or do { push @err, "$at: not a HELP or TYPE line"; next };

            if (!defined $cur || $fam ne $cur) {
                push @err, "$at: family $fam appears twice" if $closed{$fam};
                $closed{$cur} = 1 if defined $cur;
                $cur = $fam;
            }

            push @err, "$at: $kw after samples" if $nsamples{$fam};

            if ($kw eq 'HELP') {
                push @err, "$at: second HELP" if defined $help{$fam};
                push @err, "$at: bad escape in HELP"
                    if $rest =~ /\\(?![\\n])/;
                $help{$fam} = $rest;
            } else {
                push @err, "$at: second TYPE" if defined $type{$fam};
                push @err, "$at: unknown type $rest"
                    unless $rest =~ /^(?:counter|gauge|histogram|summary|untyped)$/;
                push @err, "$at: counter $fam does not end in _total"
                    if $rest eq 'counter' && $fam !~ /_total$/;
                push @err, "$at: $rest $fam ends in _total"
                    if $rest ne 'counter' && $fam =~ /_total$/;
                $type{$fam} = $rest;
            }
            next;
        }

        my ($name, $labels, $value) =
            $line =~ /^($name_re)(?:\{(.*)\})? ($num_re)$/
            or do { push @err, "$at: not a sample line"; next };

        my %l;
        if (defined $labels) {
            my $pos = 0;
            while ($labels =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/gc) {
                my ($k, $v, $comma) = ($1, $2, $3);
                push @err, "$at: reserved label name $k" if $k =~ /^__/;
                push @err, "$at: label $k twice" if exists $l{$k};
                $l{$k} = $v;
                $pos = pos $labels;
                if (!$comma) {
                    last;
                }
                push @err, "$at: trailing comma" if $pos == length $labels;
            }
            push @err, "$at: bad labels" if $pos != length $labels
                                            || $labels eq '';
        }

        my $fam = $cur;
        if (!defined $fam || !defined $type{$fam}) {
            push @err, "$at: sample before its # TYPE";
            next;
        }
        push @err, "$at: sample before its # HELP" unless defined $help{$fam};

        if ($type{$fam} eq 'histogram') {
            my ($suffix) = $name =~ /^\Q$fam\E_(bucket|sum|count)$/
                or do { push @err, "$at: $name is not part of $fam"; next };
            my $le = delete $l{le};
            my $key = join ',', map { "$_=$l{$_}" } sort keys %l;
            if ($suffix eq 'bucket') {
                push @err, "$at: bucket without le" unless defined $le;
                push @err, "$at: le is not a number"
                    if defined $le && $le !~ /^(?:$num_re)$/;
                push @{ $hist{$fam}{$key}{buckets} }, [$le, $value]
                    if defined $le;
                $l{le} = $le if defined $le;
            } else {
                $hist{$fam}{$key}{$suffix} = $value;
            }
        } elsif ($name ne $fam) {
            push @err, "$at: $name outside its family $fam";
            next;
        }

        my $series = $name . '{'
                     . join(',', map { "$_=\"$l{$_}\"" } sort keys %l) . '}';
        push @err, "$at: duplicate series $series" if exists $series{$series};
        $series{$series} = $value;
        $nsamples{$fam}++;
    }

    for my $fam (sort keys %hist) {
        for my $key (sort keys %{ $hist{$fam} }) {
            my $h = $hist{$fam}{$key};
            my @b = @{ $h->{buckets} // [] };
            my $prev_le = -9**9**9;
            my $prev = 0;
            for (@b) {
                my ($le, $v) = @$_;
                my $n = $le eq '+Inf' ? 9**9**9 : $le;
                push @err, "$fam\{$key}: buckets not in order of le"
                    if $n <= $prev_le;
                push @err, "$fam\{$key}: bucket counts decrease at le=$le"
                    if $v < $prev;
                ($prev_le, $prev) = ($n, $v);
            }
            push @err, "$fam\{$key}: no +Inf bucket"
                unless @b && $b[-1][0] eq '+Inf';
            push @err, "$fam\{$key}: no _sum" unless defined $h->{sum};
            push @err, "$fam\{$key}: _count != +Inf bucket"
                unless defined $h->{count} && @b && $h->{count} == $b[-1][1];
        }
    }

    return (\@err, \%series);
}

# HUP the master and wait until only new workers answer
sub reload {
    my $master = EdgeOrch::nginx_master_pid();
    my @old = EdgeOrch::nginx_worker_pids($master);
    my %old = map { $_ => 1 } @old;
    kill 'HUP', $master or die "kill HUP $master: $!";
    for (1 .. 40 * $Timeout) {
        my @now = EdgeOrch::nginx_worker_pids($master);
        return if @now == @old && !grep { $old{$_} } @now;
        select undef, undef, undef, 0.05;
    }
    die "old workers did not exit after the reload";
}

# requests until both workers have answered one (at most 200)
sub both_workers {
    my ($path) = @_;
    my (%pids, $n);
    while ($n++ < 200) {
        my $r = get($path);
        die "$path: HTTP $r->{status}" unless $r->{status} == 200;
        $pids{ header($r, 'X-Pid') // 'none' }++;
        last if keys %pids >= 2;
    }
    return ($n, scalar keys %pids);
}

__DATA__

=== TEST 1: a fresh status page: JSON, all zeros, no caching of the page
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/a upstream=mock ttl=10s;
}
--- init
my $r = main::get('/status');
Test::More::is($r->{status}, 200, "TEST 1 init: 200");
Test::More::is(main::header($r, 'Content-Type'), 'application/json',
               "TEST 1 init: JSON by default");
my $s = JSON::PP::decode_json($r->{body});
Test::More::is($s->{requests}{total}, 0, "TEST 1 init: no requests yet");
Test::More::is_deeply([sort keys %{ $s->{zones} }], ['c'],
                      "TEST 1 init: the zone is listed");
Test::More::is($s->{zones}{c}{size}, 1048576, "TEST 1 init: zone size");
Test::More::cmp_ok($s->{zones}{c}{free}, '>', 900000,
                   "TEST 1 init: an empty zone is mostly free");
Test::More::is($s->{zones}{c}{entries}, 0, "TEST 1 init: no entries");
Test::More::is_deeply([sort keys %{ $s->{fragments} }], ['a'],
                      "TEST 1 init: the fragment is listed");
my $f = $s->{fragments}{a};
Test::More::is_deeply([sort keys %$f],
                      [qw(cache duration_ms errors outcomes requests stale)],
                      "TEST 1 init: fragment sections");
Test::More::is_deeply([sort keys %{ $f->{errors} }],
                      [sort qw(timeout status_5xx status_4xx status_other error
                               invalid too_big encoding no_route)],
                      "TEST 1 init: error reasons");
Test::More::is_deeply([sort keys %{ $f->{outcomes} }],
                      [sort qw(ok stale fallback omitted failed cancelled)],
                      "TEST 1 init: outcomes");
my $nonzero = grep { /^\d+(?:\.\d+)?$/ && $_ != 0 }
              values %{ main::flatten($s->{fragments}) };
Test::More::is($nonzero, 0, "TEST 1 init: every fragment counter is 0");
Test::More::is($s->{routes}{configured}, JSON::PP::false,
               "TEST 1 init: no routing table");
--- request
GET /status
--- response_headers
Content-Type: application/json
Cache-Control: no-store
Vary: Accept
--- response_body_like: ^\{"nginx_version":"[\d.]+","time":\d+,"requests":\{"total":0,
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: counters are shared by the workers
Requests go on until both workers have answered one; the total seen by
either worker is the number of requests.
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
    edge_orch_fragment b /_frag/b upstream=mock;
    add_header X-Pid $pid always;
}
--- init
my ($n, $workers) = main::both_workers('/p');
Test::More::is($workers, 2, "TEST 2 init: both workers answered ($n requests)");
my %seen;
for (1 .. 100) {
    my $r = main::get('/status');
    my $s = JSON::PP::decode_json($r->{body});
    $seen{ main::header($r, 'X-Pid') } = [$s->{requests}{total},
                                          $s->{fragments}{a}{requests},
                                          $s->{fragments}{b}{outcomes}{ok}];
    last if keys %seen == 2;
}
Test::More::is(scalar keys %seen, 2, "TEST 2 init: status read from both workers");
for my $pid (sort keys %seen) {
    Test::More::is_deeply($seen{$pid}, [$n, $n, $n],
                          "TEST 2 init: worker $pid sees all $n requests");
}
--- request
GET /status
--- response_body_like: "fragments":\{"a":\{"requests":\d+,"outcomes":\{"cancelled":0,"ok":\d+,
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: a miss, a hit, a purge and a fallback each move exactly their counters by 1
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/tagged upstream=mock ttl=60s;
}
location = /f {
    edge_orch;
    edge_orch_fragment b /_frag/bad upstream=mock 'fallback={"b":0}';
}
location = /_purge { edge_orch_purge zone=c; }
--- init
my @steps = (
    ['miss', sub { main::get('/p') },
     { 'requests.total' => 1, 'zones.c.misses' => 1, 'zones.c.stores' => 1,
       'zones.c.entries' => 1, 'fragments.a.requests' => 1,
       'fragments.a.outcomes.ok' => 1, 'fragments.a.cache.miss' => 1,
       'fragments.a.duration_ms.count' => 1,
       'fragments.a.duration_ms.le.+Inf' => 1 }],
    ['hit', sub { main::get('/p') },
     { 'requests.total' => 1, 'zones.c.hits' => 1,
       'fragments.a.requests' => 1, 'fragments.a.outcomes.ok' => 1,
       'fragments.a.cache.hit' => 1, 'fragments.a.duration_ms.count' => 1,
       'fragments.a.duration_ms.le.+Inf' => 1 }],
    ['purge', sub { main::http('PURGE', '/_purge', [['Surrogate-Key', 'tag-a']]) },
     { 'zones.c.purges_hard' => 1, 'zones.c.purged_tags' => 1,
       'zones.c.tag_records' => 1 }],
    ['fallback', sub { main::get('/f') },
     { 'requests.total' => 1, 'fragments.b.requests' => 1,
       'fragments.b.outcomes.fallback' => 1,
       'fragments.b.errors.status_5xx' => 1,
       'fragments.b.duration_ms.count' => 1,
       'fragments.b.duration_ms.le.+Inf' => 1 }],
);
my $before = main::status();
for my $step (@steps) {
    my ($what, $do, $want) = @$step;
    my $r = $do->();
    Test::More::is($r->{status}, 200, "TEST 3 init: $what answered 200");
    my $after = main::status();
    Test::More::is_deeply(main::changes($before, $after), $want,
                          "TEST 3 init: $what changes exactly its counters")
        or Test::More::diag(JSON::PP->new->canonical->encode(
                                main::changes($before, $after)));
    $before = $after;
}
--- request
GET /p
--- response_body chomp
{"a":{"tagged":true}}
--- response_headers_like
Cache-Status: edge-orch/a; fwd=miss; fwd-status=200; stored
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: Prometheus text format passes a strict parser and agrees with JSON
--- http_config
edge_orch_zone name=c:1m;
edge_orch_zone name=d:1m;
edge_orch_routes $TEST_NGINX_TMP/routes;
edge_orch_region $http_x_region;
upstream cms_tokyo { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment cms /_frag/cms upstream=mock ttl=60s;
    edge_orch_fragment recs:v2 /_frag/bad upstream=mock optional;
    edge_orch_fragment ads /_frag/gone upstream=mock 'fallback=[]';
}
location = /purge { edge_orch_purge zone=d soft; }
--- init
main::get('/p', [['X-Region', 'JP']]) for 1 .. 3;
main::http('POST', '/purge', [], '{"tags":["x","y"]}');
my $r = main::get('/status?format=prometheus');
Test::More::is($r->{status}, 200, "TEST 4 init: 200");
Test::More::is(main::header($r, 'Content-Type'),
               'text/plain; version=0.0.4; charset=utf-8',
               "TEST 4 init: exposition format 0.0.4");
my ($err, $series) = main::prom_parse($r->{body});
Test::More::is_deeply($err, [], "TEST 4 init: strict parser finds no error")
    or Test::More::diag($r->{body});
my $s = main::status();
my %want = (
    'edge_orch_requests_total{}' => 3,
    'edge_orch_routes_lookups_total{}' => 9,
    'edge_orch_routes_no_route_total{}' => 6,
    'edge_orch_routes_generation{}' => 1,
    'edge_orch_cache_hits_total{zone="c"}' => 2,
    'edge_orch_zone_size_bytes{zone="d"}' => 1048576,
    'edge_orch_purges_total{mode="soft",zone="d"}' => 1,
    'edge_orch_purges_total{mode="hard",zone="d"}' => 0,
    'edge_orch_purged_tags_total{zone="d"}' => 2,
    'edge_orch_fragment_requests_total{fragment="recs:v2"}' => 3,
    'edge_orch_fragment_outcomes_total{fragment="recs:v2",outcome="omitted"}' => 3,
    'edge_orch_fragment_outcomes_total{fragment="ads",outcome="fallback"}' => 3,
    'edge_orch_fragment_cache_total{fragment="cms",result="hit"}' => 2,
    'edge_orch_fragment_duration_seconds_count{fragment="cms"}' => 3,
    'edge_orch_fragment_duration_seconds_bucket{fragment="cms",le="+Inf"}' => 3,
    'edge_orch_routes_last_known_good_workers{}' => 0,
);
for my $k (sort keys %want) {
    Test::More::is($series->{$k}, $want{$k}, "TEST 4 init: $k");
}
Test::More::cmp_ok($series->{'edge_orch_routes_age_seconds{}'}, '>=', 0,
                   "TEST 4 init: table age");
Test::More::cmp_ok($series->{'edge_orch_routes_updated_timestamp_seconds{}'},
                   '>', 1700000000, "TEST 4 init: table written recently");
# within a second of a failure the others take it over (collapsed), later
# ones fetch again: either way every request is one or the other
for my $f (['recs:v2', 'status_5xx'], ['ads', 'status_4xx']) {
    my ($name, $reason) = @$f;
    my $e = $series->{"edge_orch_fragment_errors_total{fragment=\"$name\",reason=\"$reason\"}"};
    my $c = $series->{"edge_orch_fragment_cache_total{fragment=\"$name\",result=\"collapsed\"}"};
    Test::More::ok($e >= 1 && $e + $c == 3, "TEST 4 init: $name: $e $reason + $c collapsed");
    Test::More::is($s->{fragments}{$name}{errors}{$reason}, $e, "TEST 4 init: JSON agrees");
}
my ($err2) = main::prom_parse("# HELP x_total X.\n# TYPE x_total counter\n"
                              . "x_total{a=\"1\",} 1\nx_total 1\nx_total 2\n"
                              . "y 1\n# TYPE z counter\nz 1\n");
Test::More::cmp_ok(scalar @$err2, '>=', 4,
                   "TEST 4 init: the parser does reject bad input (@$err2)");
--- request
GET /status?format=prometheus
--- response_body_like: ^# HELP edge_orch_requests_total .*\n# TYPE edge_orch_requests_total counter\nedge_orch_requests_total 3\n
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: format by ?format= and by Accept negotiation
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
}
--- request eval
["GET /status", "GET /status", "GET /status", "GET /status", "GET /status",
 "GET /status", "GET /status?format=prometheus", "GET /status?format=json",
 "GET /status?format=xml", "POST /status\nx", "HEAD /status"]
--- more_headers eval
["", "Accept: text/plain",
 "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
 "Accept: application/json",
 "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
 "Accept: text/*;q=0.3, application/json;q=0.2",
 "Accept: application/json", "Accept: text/plain", "", "", ""]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 200, 400, 405, 200]
--- response_headers eval
["Content-Type: application/json",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: application/json",
 "", "", "Content-Type: application/json"]
--- no_error_log
[alert]
[crit]



=== TEST 6: counters survive a reload; a new fragment name starts at 0
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment a /_frag/a upstream=mock ttl=60s;
    # NEW FRAGMENT
}
--- init
main::get('/p') for 1 .. 3;
my $conf = Test::Nginx::Socket::server_root() . "/conf/nginx.conf";
open my $in, '<', $conf or die "$conf: $!";
my $text = do { local $/; <$in> };
close $in;
$text =~ s{# NEW FRAGMENT}{edge_orch_fragment z /_frag/z upstream=mock;}
    or die "no marker in $conf";
open my $out, '>', $conf or die "$conf: $!";
print $out $text;
close $out;
main::reload();
my $s = main::status();
Test::More::is($s->{requests}{total}, 3, "TEST 6 init: requests kept");
Test::More::is($s->{fragments}{a}{requests}, 3, "TEST 6 init: fragment a kept");
Test::More::is($s->{fragments}{a}{cache}{hit}, 2, "TEST 6 init: hits kept");
Test::More::is($s->{zones}{c}{hits}, 2, "TEST 6 init: zone counters kept");
Test::More::is($s->{fragments}{z}{requests}, 0, "TEST 6 init: new name at 0");
main::get('/p');
$s = main::status();
Test::More::is($s->{requests}{total}, 4, "TEST 6 init: counting goes on");
Test::More::is($s->{fragments}{a}{cache}{hit}, 3, "TEST 6 init: a hit after the reload");
Test::More::is($s->{fragments}{z}{requests}, 1, "TEST 6 init: the new fragment counts");
--- request
GET /status
--- response_body_like: "requests":\{"total":4,
--- no_error_log
[error]
[alert]
[crit]
[emerg]



=== TEST 7: routing table: lookups, no route, generation, last-known-good workers
--- http_config
edge_orch_routes $TEST_NGINX_TMP/lkg;
edge_orch_region $http_x_region;
upstream cms_tokyo { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_frag/cms upstream=mock;
    edge_orch_fragment ads /_frag/ads optional;
    add_header X-Routes $edge_orch_routes always;
}
--- init
my $dir = "$ENV{TEST_NGINX_TMP}/lkg";
EdgeOrch::wait_error_log(qr{lkg" generation 1 loaded}, 2);
my $r = main::get('/p', [['X-Region', 'JP']]);
Test::More::is(main::header($r, 'X-Routes'), 'cms:cms_tokyo ads:-',
               "TEST 7 init: \$edge_orch_routes");
my $s = main::status();
Test::More::is($s->{routes}{lookups}, 2, "TEST 7 init: two lookups");
Test::More::is($s->{routes}{no_route}, 1, "TEST 7 init: one without a route");
Test::More::is($s->{routes}{generation}, 1, "TEST 7 init: generation");
Test::More::cmp_ok(abs(time - $s->{routes}{updated_at}), '<', 600,
                   "TEST 7 init: updated_at from the table");
Test::More::is($s->{fragments}{ads}{errors}{no_route}, 1,
               "TEST 7 init: the fragment failed with no_route");
Test::More::is($s->{routes}{last_known_good_workers}, 0, "TEST 7 init: no LKG");
system("rm", "-rf", $dir) == 0 or die "rm failed";
select undef, undef, undef, 1.2;
my $lkg;
for (1 .. 200) {
    $lkg = main::status()->{routes}{last_known_good_workers};
    last if $lkg == 2;
    select undef, undef, undef, 0.02;
}
Test::More::is($lkg, 2, "TEST 7 init: both workers serve the last-known-good table");
EdgeOrch::routes_cli('compile', "$ENV{TEST_NGINX_TMP}/routes.json", $dir);
select undef, undef, undef, 1.2;
for (1 .. 200) {
    $lkg = main::status()->{routes}{last_known_good_workers};
    last if $lkg == 0;
    select undef, undef, undef, 0.02;
}
Test::More::is($lkg, 0, "TEST 7 init: the table is back, no LKG");
--- request
GET /status?format=prometheus
--- response_body_like: \nedge_orch_routes_last_known_good_workers 0\n.*\nedge_orch_routes_generation 1\n
--- no_error_log
[alert]
[crit]



=== TEST 8: X-Request-Id: the client's, or $request_id, to every fragment and on the response
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
    edge_orch_fragment b /_frag/b upstream=mock;
    add_header X-Var $edge_orch_request_id always;
}
--- init
my $r = main::get('/p');
my $id = main::header($r, 'X-Request-Id') // '';
Test::More::like($id, qr/^[0-9a-f]{32}$/, "TEST 8 init: \$request_id echoed");
Test::More::is(main::header($r, 'X-Var'), $id, "TEST 8 init: \$edge_orch_request_id");
my $body = JSON::PP::decode_json($r->{body});
Test::More::is($body->{a}{rid}, $id, "TEST 8 init: fragment a got it");
Test::More::is($body->{b}{rid}, $id, "TEST 8 init: fragment b got it");
my $long = 'x' x 201;
$r = main::get('/p', [['X-Request-Id', $long]]);
$id = main::header($r, 'X-Request-Id') // '';
Test::More::like($id, qr/^[0-9a-f]{32}$/, "TEST 8 init: an implausible id is replaced");
$body = JSON::PP::decode_json($r->{body});
Test::More::is($body->{a}{rid}, $id, "TEST 8 init: ... for the fragments too");
--- request
GET /p
--- more_headers
X-Request-Id: req-42.abc
--- response_body chomp
{"a":{"rid":"req-42.abc","tp":"","ts":""},"b":{"rid":"req-42.abc","tp":"","ts":""}}
--- response_headers
X-Request-Id: req-42.abc
X-Var: req-42.abc
--- no_error_log
[error]
[alert]
[crit]



=== TEST 9: a valid traceparent: same trace id, a new span id per fragment, tracestate unchanged
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
    edge_orch_fragment b /_frag/b upstream=mock;
    edge_orch_fragment c /_frag/c upstream=mock;
    add_header X-Trace $edge_orch_trace_id always;
    add_header X-Spans $edge_orch_fragment_spans always;
}
--- init
my $tid = '4bf92f3577b34da6a3ce929d0e0e4736';
my $parent = '00f067aa0ba902b7';
my $r = main::get('/p', [['traceparent', "00-$tid-$parent-01"],
                         ['tracestate', 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE']]);
my $body = JSON::PP::decode_json($r->{body});
my %spans;
for my $f (qw(a b c)) {
    my ($t, $span, $flags) = $body->{$f}{tp} =~ /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
        or do { Test::More::fail("TEST 9 init: $f traceparent $body->{$f}{tp}"); next };
    Test::More::is($t, $tid, "TEST 9 init: $f keeps the trace id");
    Test::More::is($flags, '01', "TEST 9 init: $f keeps the flags");
    Test::More::isnt($span, $parent, "TEST 9 init: $f has a new span id");
    Test::More::isnt($span, '0' x 16, "TEST 9 init: $f span id is not zero");
    Test::More::is($body->{$f}{ts}, 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE',
                   "TEST 9 init: $f tracestate unchanged");
    $spans{$span} = $f;
}
Test::More::is(scalar keys %spans, 3, "TEST 9 init: three different span ids");
Test::More::is(main::header($r, 'X-Trace'), $tid, "TEST 9 init: \$edge_orch_trace_id");
Test::More::is(main::header($r, 'X-Spans'),
               join(' ', map { "$spans{$_}:$_" } sort { $spans{$a} cmp $spans{$b} } keys %spans),
               "TEST 9 init: \$edge_orch_fragment_spans");
# a later version is understood, sent on as version 00 with the sampled flag
$r = main::get('/p', [['traceparent', "cc-$tid-$parent-09-what-the-future-will-be-like"]]);
$body = JSON::PP::decode_json($r->{body});
Test::More::like($body->{a}{tp}, qr/^00-$tid-[0-9a-f]{16}-01$/,
                 "TEST 9 init: version cc is read, 00 is sent");
--- request
GET /p
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00
--- response_body_like: ^\{"a":\{"rid":"[0-9a-f]{32}","tp":"00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00","ts":""\},"b":
--- no_error_log
[error]
[alert]
[crit]



=== TEST 10: an invalid traceparent is dropped with its tracestate, and counted
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
}
--- init
my $tid = '4bf92f3577b34da6a3ce929d0e0e4736';
my $pid = '00f067aa0ba902b7';
my @bad = (
    "00-" . uc($tid) . "-$pid-01",              # upper case
    "00-" . ('0' x 32) . "-$pid-01",            # zero trace id
    "00-$tid-" . ('0' x 16) . "-01",            # zero parent id
    "ff-$tid-$pid-01",                          # version ff
    "00-$tid-$pid-01-extra",                    # 00 is exactly 55 chars
    "cc-$tid-$pid-01.extra",                    # later version, no dash
    "00-$tid-$pid",                             # too short
    "00_${tid}_${pid}_01",                      # separators
    "00-$tid-$pid-0g",                          # flags not hex
);
for my $tp (@bad) {
    my $r = main::get('/p', [['traceparent', $tp], ['tracestate', 'k=v']]);
    Test::More::is($r->{body} =~ /"tp":"","ts":""/ ? 1 : 0, 1,
                   "TEST 10 init: \"$tp\" is not forwarded, nor tracestate")
        or Test::More::diag($r->{body});
}
my $r = main::get('/p', [['traceparent', "00-$tid-$pid-01"],
                         ['traceparent', "00-$tid-$pid-01"]]);
Test::More::like($r->{body}, qr/"tp":""/, "TEST 10 init: two traceparents are invalid");
Test::More::is(main::status()->{tracing}{traceparent_invalid}, @bad + 1,
               "TEST 10 init: each one counted");
--- request
GET /p
--- more_headers
traceparent: garbage
tracestate: k=v
--- response_body_like: "tp":"","ts":""
--- no_error_log
[error]
[alert]
[crit]



=== TEST 11: edge_orch_trace on starts a trace when there is none
--- config
location = /p {
    edge_orch;
    edge_orch_trace on;
    edge_orch_fragment a /_frag/a upstream=mock;
    edge_orch_fragment b /_frag/b upstream=mock;
    add_header X-Trace $edge_orch_trace_id always;
}
location = /off {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
}
--- init
my $r = main::get('/p', [['tracestate', 'k=v']]);
my $tid = main::header($r, 'X-Trace') // '';
Test::More::like($tid, qr/^[0-9a-f]{32}$/, "TEST 11 init: a trace id");
my $body = JSON::PP::decode_json($r->{body});
my ($sa) = $body->{a}{tp} =~ /^00-\Q$tid\E-([0-9a-f]{16})-01$/;
my ($sb) = $body->{b}{tp} =~ /^00-\Q$tid\E-([0-9a-f]{16})-01$/;
Test::More::ok(defined $sa && defined $sb && $sa ne $sb,
               "TEST 11 init: both fragments in the trace, own spans");
Test::More::is($body->{a}{ts}, '', "TEST 11 init: a started trace has no tracestate");
my $r2 = main::get('/p');
Test::More::isnt(main::header($r2, 'X-Trace'), $tid, "TEST 11 init: a new trace per request");
$r = main::get('/off');
Test::More::like($r->{body}, qr/"tp":""/, "TEST 11 init: off by default");
Test::More::is(main::status()->{tracing}{traces_started}, 2,
               "TEST 11 init: traces started");
--- request
GET /p
--- more_headers
traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01
--- response_headers
X-Trace: 0af7651916cd43dd8448eb211c80319c
--- no_error_log
[error]
[alert]
[crit]



=== TEST 12: Server-Timing: one entry per fragment, duration and cache result or outcome
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_server_timing on;
    edge_orch_fragment cms /_frag/cms upstream=mock ttl=60s;
    edge_orch_fragment slow /_frag/slow upstream=mock;
    edge_orch_fragment ab:test /_frag/bad upstream=mock 'fallback={}';
    edge_orch_fragment plain /_frag/gone upstream=mock optional;
}
location = /off {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
}
--- request eval
["GET /p", "GET /p", "GET /off"]
--- response_headers_like eval
['Server-Timing: cms;dur=\d+\.\d;desc="miss", slow;dur=(?:[4-9]\d\d|\d{4,})\.\d;desc="miss", ab_test;dur=\d+\.\d;desc="fallback:status", plain;dur=\d+\.\d;desc="omitted:status"',
 'Server-Timing: cms;dur=\d+\.\d;desc="hit", slow;dur=(?:[4-9]\d\d|\d{4,})\.\d;desc="miss", ab_test;dur=\d+\.\d;desc="fallback:status", plain;dur=\d+\.\d;desc="omitted:status"',
 'Server-Timing: ']
--- no_error_log
[error]
[alert]
[crit]



=== TEST 13: log variables: fragment times, statuses, routes; the documented log_format
--- http_config
log_format edge '$remote_addr "$request" $status $request_time '
                'region=$edge_orch_region gen=$edge_orch_routes_generation '
                'rid=$edge_orch_request_id [$edge_orch_fragments] '
                'routes="$edge_orch_routes" statuses="$edge_orch_fragment_statuses" '
                'times="$edge_orch_fragment_times"';
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_frag/cms upstream=mock;
    edge_orch_fragment slow /_frag/slow upstream=mock;
    edge_orch_fragment recs /_frag/bad upstream=mock optional;
    edge_orch_fragment ads /_frag/x optional;
    access_log logs/edge.log edge;
    add_header X-Times $edge_orch_fragment_times always;
    add_header X-Statuses $edge_orch_fragment_statuses always;
    add_header X-Routes $edge_orch_routes always;
}
--- init
my $r = main::get('/p', [['X-Request-Id', 'log-1']]);
my $log = Test::Nginx::Socket::server_root() . "/logs/edge.log";
my $line = '';
for (1 .. 100) {
    if (open my $fh, '<', $log) { $line = <$fh> // ''; last if $line ne '' }
    select undef, undef, undef, 0.05;
}
Test::More::like($line, qr/^127\.0\.0\.1 "GET \/p HTTP\/1\.0" 200 [\d.]+ region=default gen=0 rid=log-1 \[cms=ok; slow=ok; recs=omitted:status; ads=omitted:no_route\] routes="cms:mock slow:mock recs:mock ads:-" statuses="cms:200 slow:200 recs:503 ads:-" times="cms:\d+ slow:(?:[4-9]\d\d|\d{4,}) recs:\d+ ads:\d+"$/,
                 "TEST 13 init: the access log line");
--- request
GET /p
--- response_headers_like
X-Times: cms:\d+ slow:(?:[4-9]\d\d|\d{4,}) recs:\d+ ads:\d+
X-Statuses: cms:200 slow:200 recs:503 ads:-
X-Routes: cms:mock slow:mock recs:mock ads:-
--- no_error_log
[error]
[alert]
[crit]



=== TEST 14: one slot per fragment name, shared by locations
--- config
location = /one {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
}
location = /two {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=mock;
    edge_orch_fragment b /_frag/b upstream=mock;
}
--- init
main::get($_) for qw(/one /two /two);
my $s = main::status();
Test::More::is_deeply([map { $s->{fragments}{$_}{requests} } qw(a b)], [3, 2],
                      "TEST 14 init: a counted in both locations");
--- request
GET /status?format=prometheus
--- response_body_like: \nedge_orch_fragment_requests_total\{fragment="a"\} 3\nedge_orch_fragment_requests_total\{fragment="b"\} 2\n
--- no_error_log
[error]
[alert]
[crit]



=== TEST 15: fetch locks held, and a request the client gave up on, on the status page
--- http_config
edge_orch_zone name=c:1m;
--- config
location = /p {
    edge_orch zone=c;
    edge_orch_fragment slow /_frag/slower upstream=mock ttl=60s timeout=10s;
}
--- init
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => Test::Nginx::Socket::server_port(),
                              Proto => 'tcp') or die "connect: $!";
print $s "GET /p HTTP/1.0\r\nHost: localhost\r\n\r\n";
my $st;
for (1 .. 100) {
    $st = main::status();
    last if $st->{zones}{c}{fetch_locks} == 1;
    select undef, undef, undef, 0.01;
}
Test::More::is($st->{zones}{c}{fetch_locks}, 1, "TEST 15 init: one fetch lock held");
close $s;
my $aborted;
for (1 .. 100) {
    $st = main::status();
    last if $st->{requests}{aborted} == 1 && $st->{zones}{c}{fetch_locks} == 0;
    select undef, undef, undef, 0.02;
}
Test::More::is($st->{requests}{aborted}, 1, "TEST 15 init: the abandoned request counted");
Test::More::is($st->{fragments}{slow}{outcomes}{cancelled}, 1,
               "TEST 15 init: its fragment was cancelled");
Test::More::is($st->{zones}{c}{fetch_locks}, 0, "TEST 15 init: the lock is released");
--- request
GET /status
--- response_body_like: "requests":\{"total":1,"failed":0,"aborted":1\}
--- no_error_log
[alert]
[crit]



=== TEST 16: the stats zone's name is reserved
--- http_config
edge_orch_zone name=edge_orch_stats:1m;
--- config
location = /status { edge_orch_status; }
--- must_die
--- error_log
edge_orch_zone name "edge_orch_stats" is reserved for the module's counters
