package EdgeOrch;

# Shared set-up for the ngx_edge_orch_module test files.  Works with the
# real Test::Nginx::Socket and with the project's compatible runner in
# t/compat (used only when the real one is not installed).

use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::Nginx::Socket ();

our @EXPORT = qw(edge_orch_setup routes_cli routes_dir wait_error_log);
use Exporter 'import';

# short fragment timeouts in tests; valgrind slows everything ten-fold
$ENV{TEST_NGINX_SHORT_TIMEOUT} ||= $ENV{TEST_NGINX_USE_VALGRIND}
                                   ? '1s' : '100ms';

my $so = $ENV{TEST_NGINX_EDGE_ORCH_SO}
         || 'build/nginx/ngx_http_edge_orch_module.so';
my $cli = $ENV{TEST_NGINX_EDGE_ORCH_CLI} || 'tools/edge-orch-routes';
my $modules = $ENV{TEST_NGINX_MODULES_DIR} || '/usr/lib/nginx/modules';

sub edge_orch_setup {
    my (%opt) = @_;

    my $load = "load_module $modules/ngx_http_echo_module.so;\n";

    if ($opt{lua}) {
        $load .= "load_module $modules/ndk_http_module.so;\n"
               . "load_module $modules/ngx_http_lua_module.so;\n";
    }

    $load .= "load_module " . File::Spec->rel2abs($so) . ";\n";

    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        my $mc = defined $block->main_config ? $block->main_config : '';
        $block->set_value("main_config", $load . $mc);
    });
}

# run the routing CLI; dies with its output on failure
sub routes_cli {
    my @args = @_;
    my $out = `'$cli' @{[ map { "'$_'" } @args ]} 2>&1`;
    die "edge-orch-routes @args failed: $out" if $? != 0;
    return $out;
}

# a fresh routing table compiled from a JSON string
sub routes_dir {
    my ($json) = @_;
    my $tmp = tempdir(CLEANUP => 1);
    my $dir = "$tmp/routes";
    open my $fh, '>', "$tmp/routes.json" or die "$tmp/routes.json: $!";
    print $fh $json;
    close $fh;
    routes_cli('compile', "$tmp/routes.json", $dir);
    return $dir;
}

# wait (up to 10 s) until error.log has $count lines matching $re: used by
# --- init code that must not race the workers' start-up
sub wait_error_log {
    my ($re, $count) = @_;
    my $log = Test::Nginx::Socket::server_root() . "/logs/error.log";

    for (1 .. 200) {
        if (open my $fh, '<', $log) {
            my $n = grep { $_ =~ $re } <$fh>;
            return if $n >= $count;
        }

        select undef, undef, undef, 0.05;
    }

    die "timed out waiting for $count lines matching $re in $log";
}

use File::Spec;

# --------------------------------------------------------------------------
# Client helpers for --- init code (cache and coalescing tests).  They are
# called fully qualified (EdgeOrch::http_parallel(...)) because --- init is
# evaluated in the runner's package.

use IO::Select ();
use IO::Socket::INET ();
use Time::HiRes ();

# parse one raw HTTP/1.x response -> { status, headers => { lc name =>
# "v1, v2" }, body }; the body is cut at Content-Length when there is one
sub parse_http_response {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw // '', 2;
    my %res = (status => 0, headers => {}, body => $body // '', raw => $raw);
    return \%res unless defined $head;
    my @lines = split /\r\n/, $head;
    my $sl = shift @lines // '';
    $res{status} = $1 if $sl =~ m{^HTTP/\d\.\d\s+(\d+)};
    for (@lines) {
        my ($k, $v) = /^([^:]+?)\s*:\s*(.*?)\s*$/ or next;
        $k = lc $k;
        $res{headers}{$k} = defined $res{headers}{$k}
                            ? "$res{headers}{$k}, $v" : $v;
    }
    my $cl = $res{headers}{'content-length'};
    $res{body} = substr($res{body}, 0, $cl)
        if defined $cl && length($res{body}) > $cl;
    return \%res;
}

# Send all requests at once (each on its own connection, all connected and
# written before any response is read), then collect every response.
# $reqs: array of paths, or of [path, "Header: value\r\n..."] pairs.
# Returns a list of parse_http_response() hashes (in request order) with
# "time": seconds from sending until the whole body (per Content-Length)
# had arrived, and "error" when the response did not come within $timeout.
sub http_parallel {
    my ($reqs, %opt) = @_;
    my $timeout = $opt{timeout} // 10;
    my $port = $opt{port} // Test::Nginx::Socket::server_port();
    my @c;

    for my $r (@$reqs) {
        my ($path, $hdrs) = ref $r ? @$r : ($r, '');
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5)
            or die "connect to 127.0.0.1:$port: $!";
        push @c, { sock => $s, buf => '', done => 0,
                   req => "GET $path HTTP/1.0\r\nHost: localhost\r\n"
                          . ($hdrs // '') . "\r\n" };
    }

    my $start = Time::HiRes::time();

    for my $c (@c) {
        my $off = 0;
        while ($off < length $c->{req}) {
            my $n = syswrite($c->{sock}, $c->{req}, length($c->{req}) - $off,
                             $off);
            die "write: $!" unless defined $n;
            $off += $n;
        }
        $c->{sent} = Time::HiRes::time();
        $c->{sock}->blocking(0);
    }

    my %by_fd = map { fileno($_->{sock}) => $_ } @c;
    my $sel = IO::Select->new(map { $_->{sock} } @c);
    my $deadline = $start + $timeout;

    while ($sel->count) {
        my $left = $deadline - Time::HiRes::time();
        last if $left <= 0;
        for my $s ($sel->can_read($left)) {
            my $c = $by_fd{fileno $s};
            my $n = sysread($s, my $buf, 65536);
            next if !defined $n && $!{EAGAIN};
            if (!$n) {
                $c->{done} = 1;
                $c->{time} //= Time::HiRes::time() - $c->{sent};
                $sel->remove($s);
                close $s;
                next;
            }
            $c->{buf} .= $buf;
            if (!defined $c->{time}
                && $c->{buf} =~ /\r\n\r\n/
                && $c->{buf} =~ /^Content-Length:\s*(\d+)/mi)
            {
                my $cl = $1;
                my $hl = index($c->{buf}, "\r\n\r\n") + 4;
                $c->{time} = Time::HiRes::time() - $c->{sent}
                    if length($c->{buf}) >= $hl + $cl;
            }
        }
    }

    my @out;
    for my $c (@c) {
        my $res = parse_http_response($c->{buf});
        $res->{time} = $c->{time};
        $res->{error} = 'timed out' unless $c->{done};
        if (!$c->{done}) {
            close $c->{sock};
        }
        push @out, $res;
    }

    return @out;
}

# one request -> one response hash (see http_parallel)
sub http_get {
    my ($path, %opt) = @_;
    my ($res) = http_parallel([[$path, $opt{headers} // '']], %opt);
    return $res;
}

# start requests and return without reading the responses: the sockets
# are returned so that the caller decides when they are closed
sub http_start {
    my ($reqs, %opt) = @_;
    my $port = $opt{port} // Test::Nginx::Socket::server_port();
    my @socks;
    for my $r (@$reqs) {
        my ($path, $hdrs) = ref $r ? @$r : ($r, '');
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5)
            or die "connect to 127.0.0.1:$port: $!";
        print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n"
                 . ($hdrs // '') . "\r\n";
        push @socks, $s;
    }
    return @socks;
}

# pid of the nginx master (from the pid file) and of its live children
sub nginx_master_pid {
    my $file = Test::Nginx::Socket::server_root() . "/logs/nginx.pid";
    open my $fh, '<', $file or die "$file: $!";
    my $pid = <$fh>;
    $pid =~ /(\d+)/ or die "$file: no pid";
    return $1;
}

sub nginx_worker_pids {
    my $master = shift // nginx_master_pid();
    my @pids;
    opendir my $d, '/proc' or die "/proc: $!";
    for my $p (grep /^\d+$/, readdir $d) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $st = <$fh> // next;
        $st =~ s/^.*\)\s+//s;
        my ($state, $ppid) = split ' ', $st;
        push @pids, $p if $ppid == $master && $state ne 'Z';
    }
    return sort { $a <=> $b } @pids;
}

# number of error.log lines matching $re
sub error_log_count {
    my ($re) = @_;
    my $log = Test::Nginx::Socket::server_root() . "/logs/error.log";
    open my $fh, '<', $log or return 0;
    return scalar grep { $_ =~ $re } <$fh>;
}

# read one response from a socket returned by http_start (until EOF or
# $timeout seconds) -> parse_http_response() hash with "time"/"error"
sub http_read {
    my ($sock, %opt) = @_;
    my $timeout = $opt{timeout} // 10;
    my $start = Time::HiRes::time();
    my $sel = IO::Select->new($sock);
    my ($buf, $eof) = ('', 0);
    while (1) {
        my $left = $start + $timeout - Time::HiRes::time();
        last if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($sock, my $chunk, 65536);
        next if !defined $n && $!{EAGAIN};
        if (!$n) { $eof = 1; last }
        $buf .= $chunk;
    }
    close $sock;
    my $res = parse_http_response($buf);
    $res->{time} = Time::HiRes::time() - $start;
    $res->{error} = 'timed out' unless $eof;
    return $res;
}

1;
