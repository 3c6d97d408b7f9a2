package Test::Nginx::Socket;

# ---------------------------------------------------------------------------
# Minimal Test::Nginx::Socket-compatible test runner, written for this
# project (it is ours; no code is taken from openresty/test-nginx, only its
# documented behaviour is mimicked).  The build only puts t/compat on @INC
# when `perl -MTest::Nginx::Socket -e1` fails, so the real Test::Nginx
# always takes precedence; .t files must run unchanged under both.
#
# Supported API: use Test::Nginx::Socket ['no_plan' | tests => N]; plan,
# blocks, repeat_each, workers, worker_connections, master_on, master_off,
# master_process_enabled, log_level, no_shuffle, no_long_string,
# no_root_location, run_tests, add_block_preprocessor, env_to_nginx,
# server_port, server_name, html_dir, server_root, timeout,
# check_accum_error_log, bail_out, is_str, plus Test::Base's exports.
# $TEST_NGINX_* (incl. $TEST_NGINX_RAND_PORT_N) is expanded in config,
# http_config, main_config, post_main_config, user_files, tcp_listen,
# pipelined_requests and response_body, as in the real one.
#
# Supported sections: main_config http_config config post_main_config
# server_name log_level request (string, or eval'ed ARRAY = one connection
# per request) pipelined_requests raw_request more_headers (string or ARRAY)
# response_body (string or qr//) response_body_like response_body_unlike
# error_code error_code_like response_headers response_headers_like
# raw_response_headers_like raw_response_headers_unlike error_log
# no_error_log must_die init user_files timeout wait abort ignore_response
# skip_nginx skip_eval ONLY SKIP LAST tcp_listen tcp_reply (string, ARRAY
# or CODE) tcp_reply_delay tcp_no_close tcp_query tcp_query_len.
# Environment: TEST_NGINX_BINARY, TEST_NGINX_SERVER_PORT/TEST_NGINX_PORT,
# TEST_NGINX_TIMEOUT, TEST_NGINX_LOG_LEVEL, TEST_NGINX_MASTER_PROCESS,
# TEST_NGINX_NO_SHUFFLE, TEST_NGINX_SERVROOT, TEST_NGINX_USE_VALGRIND,
# TEST_NGINX_CHECK_ACCUM_ERR_LOG, TEST_NGINX_VERBOSE.
#
# Deliberate differences from the real Test::Nginx:
#  * nginx listens on 127.0.0.1:PORT only (the real one: all addresses);
#  * nginx is stopped at the end of every block (the real one stops it when
#    the next block starts), and its stderr goes to logs/nginx.stderr,
#    which --- must_die blocks also search for --- error_log patterns;
#  * a --- no_error_log pattern yields exactly one failure even when it
#    matches several lines; "!Name" in response_headers is case-insensitive;
#  * under valgrind, client timeouts are scaled and valgrind reports are
#    turned into failing tests (see Util.pm); TEST_NGINX_USE_VALGRIND's value
#    is not used as valgrind options;
#  * no HTTP/2/3, stap, HUP reload, check-leak, benchmark, UDP, curl,
#    access_log, shutdown_error_log, grep_error_log, response filters.
# ---------------------------------------------------------------------------

use strict;
use warnings;
use Test::Base -base;
use Test::Nginx::Util;
use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep);

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests repeat_each worker_connections
    master_process_enabled no_long_string workers master_on master_off
    log_level no_shuffle no_root_location server_name server_addr
    server_root html_dir server_port timeout check_accum_error_log
    add_block_preprocessor bail_out
);

$RunTestHelper = \&run_test_helper;

# ------------------------------------------------------ request building
sub more_headers_for {
    my ($block, $i) = @_;
    my $mh = $block->more_headers // '';
    if (ref $mh eq 'ARRAY') {
        $mh = $mh->[$i];
        bail_out($block->name . " - --- more_headers lacks data for request $i") unless defined $mh;
    }
    my ($out, $chunked) = ('', 0);
    for (split /\n+/, $mh) {
        next if /^\s*#/;
        my ($k, $v) = split /:\s*/, $_, 2;
        $v //= '';
        $chunked = 1 if lc $k eq 'transfer-encoding' && $v eq 'chunked';
        $out .= "$k: $v\r\n";
    }
    return ($out, $chunked);
}

# "METH [URI [VERSION]]\nbody" -> raw HTTP request text
sub build_request {
    my ($name, $req, $hdrs, $chunked, $conn) = @_;
    $req //= '';
    1 while $req =~ s/^\s*#[^\n]+\s+|^\s+//gs;   # leading comments/blanks
    my ($first, $body) = split /\n/, $req, 2;
    bail_out("$name - request empty") unless defined $first && $first =~ /\S/;
    my ($meth, $uri, $ver) = split ' ', $first;
    $uri //= '/';
    $ver //= 'HTTP/1.1';
    $body //= '';
    my $extra = '';
    if (!$chunked && $body ne '' && $hdrs !~ /(?:^|\n)Content-Length:/i) {
        $body =~ s/^\s+|\s+$//gs;
        $extra = "Content-Length: " . length($body) . "\r\n";
    }
    my $h = '';
    $h .= "Host: $ServerName\r\n" unless $hdrs =~ /(?:^|\n)Host:/i;
    $h .= "Connection: $conn\r\n" unless $hdrs =~ /(?:^|\n)Connection/i;
    return "$meth $uri $ver\r\n$h$hdrs$extra\r\n$body";
}

# -> list of [raw request text, number of responses expected]
sub requests_from_block {
    my ($block) = @_;
    my $name = $block->name;
    if (defined(my $raw = $block->raw_request)) {
        return [ref $raw eq 'ARRAY' ? join('', @$raw) : $raw, 1];
    }
    if (defined(my $reqs = $block->pipelined_requests)) {
        bail_out("$name - invalid entries in --- pipelined_requests") unless ref $reqs eq 'ARRAY';
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my $r = expand_env_in_text($reqs->[$i], $name);
            $all .= build_request($name, $r, more_headers_for($block, $i),
                                  $i == $#$reqs ? 'close' : 'keep-alive');
        }
        return [$all, scalar @$reqs];
    }
    my $req = $block->request;
    my @list = ref $req eq 'ARRAY' ? @$req : ($req);
    my @out;
    for my $i (0 .. $#list) {
        my $r = $list[$i];
        $r = join '', map { ref $_ eq 'HASH' ? $_->{value} : $_ } @$r if ref $r eq 'ARRAY';
        push @out, [build_request($name, $r, more_headers_for($block, $i), 'close'), 1];
    }
    return @out;
}

# ------------------------------------------------------------ transport
sub send_request {
    my ($block, $raw, $timeout) = @_;
    my $name = $block->name;
    my $sock;
    for my $try (1 .. 50) {
        $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr, PeerPort => $ServerPort,
                                      Proto => 'tcp', Timeout => $timeout) and last;
        sleep 0.05 * ($try < 10 ? $try : 10);
    }
    if (!$sock) {
        Test::More::fail("$name - Can't connect to $ServerAddr:$ServerPort: $! (aborted)");
        return '';
    }
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my ($off, $resp) = (0, '');
    my $timed_out;
    while ($off < length $raw) {
        if (!$sel->can_write($timeout)) { $timed_out = 1; last }
        my $n = syswrite($sock, $raw, length($raw) - $off, $off);
        if (!defined $n) { next if $!{EAGAIN}; warn "$name - write failed: $!\n"; last }
        $off += $n;
    }
    while (!$timed_out) {
        if (!$sel->can_read($timeout)) { $timed_out = 1; last }
        my $n = sysread($sock, my $buf, 65536);
        if (!defined $n) { next if $!{EAGAIN}; last }
        last if $n == 0;
        $resp .= $buf;
    }
    close $sock;
    if ($timed_out && !defined $block->abort) {
        Test::More::fail("ERROR: client socket timed out - $name");
    }
    return $resp;
}

# one response off the front of $raw -> ($res, $raw_headers, $left)
sub parse_response {
    my ($name, $raw, $head_req) = @_;
    return (undef, '', undef) if !defined $raw || $raw eq '';
    my ($head, $rest) = split /\r?\n\r?\n/, $raw, 2;
    $rest //= '';
    my @lines = split /\r?\n/, $head;
    my $status = shift(@lines) // '';
    my %res = (code => ($status =~ m{^HTTP/\d\.\d\s+(\d+)} ? $1 : undef),
               headers => {}, body => '');
    my $raw_headers = "$head\r\n";
    for (@lines) {
        my ($k, $v) = /^([^:]+?)\s*:\s*(.*?)\s*$/ or next;
        push @{ $res{headers}{lc $k} }, $v;
    }
    my $h = sub { my $v = $res{headers}{lc shift}; $v ? join(', ', @$v) : undef };
    my $left;
    my $code = $res{code} // 0;
    if ($head_req || $code == 304 || $code == 204 || $code == 101 || $code =~ /^1/) {
        $left = $rest;
    } elsif (lc($h->('Transfer-Encoding') // '') eq 'chunked') {
        my $body = '';
        while (1) {
            if ($rest !~ s/^[ \t]*([0-9a-fA-F]+)[^\r\n]*\r\n//) {
                Test::More::fail("$name - invalid chunked body received: " . fmt_str(substr $rest, 0, 80));
                last;
            }
            my $len = hex $1;
            if ($len == 0) { $rest =~ s/^(?:[^\r\n]+\r\n)*\r\n//; last }
            if (length($rest) < $len + 2) {
                Test::More::fail("$name - invalid chunked data received (not enough octets)");
                $body .= $rest; $rest = ''; last;
            }
            $body .= substr($rest, 0, $len);
            substr($rest, 0, $len + 2) = '';
        }
        ($res{body}, $left) = ($body, $rest);
    } elsif (defined(my $len = $h->('Content-Length'))) {
        warn "WARNING: $name - response body truncated: $len expected, got " . length($rest) . "\n"
            if length($rest) < $len;
        ($res{body}, $left) = (substr($rest, 0, $len), length($rest) > $len ? substr($rest, $len) : undef);
    } else {
        $res{body} = $rest;
    }
    $res{header} = $h;
    return (\%res, $raw_headers, $left);
}

# ---------------------------------------------------------------- checks
sub indexed {    # value of section $sec for the $idx-th response
    my ($block, $sec, $idx, $need_array) = @_;
    my ($name, $v) = ($block->name, scalar $block->$sec);
    return $v->[$need_array ? $idx : 0] if ref $v eq 'ARRAY';
    bail_out("$name - You asked for many requests, the expected results should be arrays as well.")
        if $need_array && defined $v;
    return $v;
}

sub check_response {
    my ($block, $res, $raw_headers, $rep, $idx, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->{code}) || '';
    if (defined(my $like = $block->error_code_like)) {
        my $pat = indexed($block, 'error_code_like', $idx, $need_array);
        Test::More::like($code, qr/$pat/sm, "$name - status code ok");
    } else {
        Test::More::is($code, indexed($block, 'error_code', $idx, $need_array) // 200,
                       "$name - status code ok");
    }
    for my $t (qw(like unlike)) {
        my $sec = "raw_response_headers_$t";
        next unless defined $block->$sec;
        my $pat = indexed($block, $sec, $idx, $need_array);
        no strict 'refs';
        &{"Test::More::$t"}($raw_headers, qr/$pat/s, "$name - raw resp headers $t");
    }
    my $hval = sub { ($res ? $res->{header}->(shift) : undef) // '' };
    if (defined $block->response_headers) {
        my $hdrs = parse_headers(indexed($block, 'response_headers', $idx, $need_array));
        for my $k (sort keys %$hdrs) {
            my $v = $hdrs->{$k};
            if (!defined $v) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$k\E\s*:/msi,
                                   "$name - header $k not present in the raw headers");
                next;
            }
            $v =~ s/\$ServerPort\b/$ServerPort/g;
            Test::More::is($hval->($k), $v, "$name - header $k ok");
        }
    } elsif (defined $block->response_headers_like) {
        my $hdrs = parse_headers(indexed($block, 'response_headers_like', $idx, $need_array));
        for my $k (sort keys %$hdrs) {
            my $v = $hdrs->{$k} // '';
            Test::More::like($hval->($k), qr/^$v$/, "$name - header $k like ok");
        }
    }
    my $body = $res ? $res->{body} : undef;
    if (defined $block->response_body) {
        my $exp = indexed($block, 'response_body', $idx, $need_array);
        my $desc = "$name - response_body - %s (repeated req $rep, req $idx)";
        if (ref $exp) {
            Test::More::like($body, $exp, sprintf $desc, 'like');
        } else {
            if (defined $exp) {
                $exp =~ s/\$ServerPort\b/$ServerPort/g;
                $exp = expand_env_in_text($exp, $name);
            }
            is_str($body, $exp, sprintf $desc, 'response is expected');
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $t = defined $block->response_body_like ? 'like' : 'unlike';
        my $sec = "response_body_$t";
        my $pat = indexed($block, $sec, $idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g unless ref $pat;
        my $summary = $body // '';
        $summary =~ s/^\s+|\s+$//g; $summary =~ s/\s+/ /g;
        no strict 'refs';
        &{"Test::More::$t"}($body, qr/$pat/s, "$name - $sec - response is expected ($summary)");
    }
}

sub run_test_helper {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $timeout = parse_time($block->timeout) // timeout();
    $timeout *= $ValgrindFactor if $UseValgrind;
    my @reqs = requests_from_block($block);
    my $need_array = @reqs > 1 || $reqs[0][1] > 1;
    my ($idx, $total) = (0, 0);
    $total += $_->[1] for @reqs;
    for my $r (@reqs) {
        my ($raw_req, $nresp) = @$r;
        my $head_req = $raw_req =~ /^\s*HEAD\s/;
        my $left = send_request($block, $raw_req, $timeout);
        for my $k (1 .. $nresp) {
            my ($res, $raw_headers);
            ($res, $raw_headers, $left) = parse_response($name, $left, $head_req);
            if (defined $left && $left ne '' && $k == $nresp) {
                warn "WARNING: $name - unexpected extra bytes after the response: \"" . fmt_str($left) . "\"\n";
            }
            check_response($block, $res, $raw_headers, $rep, $idx, $need_array)
                unless defined $block->ignore_response;
            if (++$idx < $total) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $rep);
            }
        }
    }
    sleep $block->wait if $block->wait;
    check_error_log($block, $rep);
}

1;
