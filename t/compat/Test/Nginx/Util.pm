package Test::Nginx::Util;

# ---------------------------------------------------------------------------
# Minimal Test::Nginx compatibility runner -- server side (config, process
# management, error log, valgrind, mock TCP server).  Written for this
# project; it is NOT openresty/test-nginx and shares no code with it.  It is
# only picked up when the real Test::Nginx is not installed (the build runs
# `prove -I t/compat ...` only if `perl -MTest::Nginx::Socket -e1` fails), so
# the real module always takes precedence.  See Socket.pm for the supported
# subset of sections and the list of deliberate differences.
#
# Valgrind (TEST_NGINX_USE_VALGRIND=1): nginx runs in the foreground (daemon
# off, master_process/workers unchanged) under
#   valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite
#            --num-callers=30 --error-exitcode=0
#            --log-file=t/servroot/logs/valgrind.%p.log
#            [--suppressions=valgrind.suppress  (if present in the cwd)]
# After every block nginx is stopped (so every process writes its leak
# report) and each valgrind.*.log is scanned.  One failing test
# ("... - valgrind: <headline>") is emitted per offending record:
#   * any error whose headline mentions Invalid read / Invalid write /
#     Invalid free / Mismatched free / Syscall param / uninitialised;
#   * any "definitely lost" leak record whose stack mentions
#     ngx_http_edge_orch (override: TEST_NGINX_VALGRIND_LEAK_PATTERN);
#     definite leaks not attributable to the module (nginx itself leaks a
#     little at exit) are ignored.
# Nothing is emitted for a clean block, so plans stay the same.  Client
# timeouts are multiplied by TEST_NGINX_VALGRIND_TIMEOUT_FACTOR (default 4)
# and start/stop waits are longer.  --- must_die blocks never use valgrind.
# ---------------------------------------------------------------------------

use strict;
use warnings;
use base 'Exporter';

use POSIX qw(WNOHANG);
use File::Spec ();
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(sleep time);
use List::Util qw(shuffle);
use IO::Socket::INET ();
use IO::Socket::UNIX ();
use Test::More ();
use Test::LongString ();

our $ServerAddr   = '127.0.0.1';
our $ServerName   = 'localhost';
our $ServerPort   = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $Workers      = 1;
our $WorkerConnections = 64;
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $LogLevel     = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $RepeatEach   = 1;
our $NoShuffle    = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoLongString;
our $NoRootLocation = 0;
our $Timeout      = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $UseValgrind  = $ENV{TEST_NGINX_USE_VALGRIND};
our $ValgrindFactor = $ENV{TEST_NGINX_VALGRIND_TIMEOUT_FACTOR} || 4;
our $ValgrindLeakPat = $ENV{TEST_NGINX_VALGRIND_LEAK_PATTERN} || 'ngx_http_edge_orch';
our $Verbose      = $ENV{TEST_NGINX_VERBOSE};
our $NginxBinary  = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $TestNginxSleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our (@EnvToNginx, @BlockPreprocessors);
our ($NginxVersion, $RunTestHelper, $PrevConfText);
our $RandPorts = {};
our ($ErrLogFilePos, $StderrPos) = (0, 0);
our ($NginxPid, $TcpServerPid, $InSubprocess);
our $MainPid = $$;

our $ServRoot = $ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $StderrFile = "$LogDir/nginx.stderr";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";

our @EXPORT = qw(
    env_to_nginx is_str no_long_string server_port server_name server_addr
    repeat_each workers worker_connections log_level master_on master_off
    master_process_enabled no_shuffle no_root_location timeout
    check_accum_error_log add_block_preprocessor html_dir server_root
    bail_out run_tests expand_env_in_text parse_time parse_headers
    error_log_data check_error_log fmt_str
    $ServerPort $ServerAddr $ServerName $NoLongString $RepeatEach $UseValgrind
    $ValgrindFactor $RunTestHelper $ErrLogFile $PidFile $ServRoot $HtmlDir
);

# ----------------------------------------------------------------- settings
sub env_to_nginx (@) {
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n" if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}
sub no_long_string ()  { $NoLongString = 1 }
sub no_shuffle ()      { $NoShuffle = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub master_on ()       { $MasterProcessEnabled = 'on' }
sub master_off ()      { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = shift() ? 'on' : 'off';
}
sub server_port (@)   { @_ ? ($ServerPort = shift) : $ServerPort }
sub server_name (@)   { @_ ? ($ServerName = shift) : $ServerName }
sub server_addr (@)   { @_ ? ($ServerAddr = shift) : $ServerAddr }
sub repeat_each (@)   { $RepeatEach = shift if @_; $RepeatEach }
sub workers (@)       { @_ ? ($Workers = shift) : $Workers }
sub worker_connections (@) { @_ ? ($WorkerConnections = shift) : $WorkerConnections }
sub log_level (@)     { @_ ? ($LogLevel = shift) : $LogLevel }
sub timeout (@)       { @_ ? ($Timeout = shift) : $Timeout }
sub html_dir ()       { $HtmlDir }
sub server_root ()    { $ServRoot }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }

# ------------------------------------------------------------------ helpers
sub bail_out (@) { cleanup(); Test::More::BAIL_OUT(join '', @_) }

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return Test::More::like($got, $expected, $desc) if ref $expected eq 'Regexp';
    return Test::More::is($got, $expected, $desc) if $NoLongString;
    return Test::LongString::is_string($got, $expected, $desc);
}

sub parse_time ($) {
    my $t = shift;
    return $t unless defined $t;
    return $1 / 1000 if $t =~ /^\s*([\d.]+)\s*ms\s*$/;
    $t =~ s/^\s*([\d.]+)\s*s?\s*$/$1/;
    return $t;
}

sub fmt_str ($) {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g; $s =~ s/\r/\\r/g; $s =~ s/\n/\\n/g;
    return $s;
}

# "Name: value" lines -> { Name => value }, "!Name" -> { Name => undef }
sub parse_headers ($) {
    my %h;
    for (split /\n/, shift // '') {
        s/^\s+|\s+$//g;
        next if $_ eq '';
        if (s/^!\s*//) { $h{$_} = undef; next }
        my ($k, $v) = split /\s*:\s*/, $_, 2;
        $h{$k} = $v // '';
    }
    return \%h;
}

sub free_port {
    my $used = shift;
    for (1 .. 1000) {
        my $p = 1988 + int rand 60000;
        next if $used->{$p};
        my $s = IO::Socket::INET->new(LocalAddr => $ServerAddr, LocalPort => $p,
                                      Proto => 'tcp', Listen => 1, ReuseAddr => 1) or next;
        close $s;
        return $p;
    }
    bail_out("cannot find a free port");
}

# $TEST_NGINX_FOO -> $ENV{TEST_NGINX_FOO}; $TEST_NGINX_RAND_PORT_N -> a free
# port, stable within the current block.
sub expand_env_in_text ($$;$) {
    my ($text, $name) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $v = $1;
        if ($v =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $RandPorts->{$v} = free_port({ $ServerPort => 1, map { $_ => 1 } values %$RandPorts })
                unless defined $RandPorts->{$v};
            $RandPorts->{$v};
        } else {
            defined $ENV{$v} or bail_out("$name - No environment $v defined.\n");
            $ENV{$v};
        }
    }ge;
    return $text;
}

sub find_binary {
    my $bin = shift;
    return (-x $bin ? $bin : undef) if $bin =~ m{/};
    for my $d (split(/:/, $ENV{PATH} // ''), qw(/usr/sbin /usr/local/sbin /usr/local/nginx/sbin)) {
        return "$d/$bin" if $d ne '' && -f "$d/$bin" && -x _;
    }
    return undef;
}

sub nginx_version {
    my $out = `$NginxBinary -V 2>&1`;
    return $out =~ m{nginx/(\d+)\.(\d+)\.(\d+)} ? sprintf("%d.%03d%03d", $1, $2, $3) : undef;
}

# ----------------------------------------------------- process management
sub proc_stat ($) {    # (state, ppid, pgrp) or () if gone
    open my $fh, '<', "/proc/$_[0]/stat" or return ();
    my $s = <$fh> // return ();
    $s =~ s/^.*\)\s+//s;
    return (split ' ', $s)[0 .. 2];
}
sub is_running ($) { my ($st) = proc_stat(shift); defined $st && $st ne 'Z' && $st ne 'X' }
sub group_members ($) {
    my $pgid = shift;
    opendir my $d, '/proc' or return ();
    return grep { my ($st, undef, $pg) = proc_stat($_);
                  defined $pg && $pg == $pgid && $st ne 'Z' && $_ != $$ } grep /^\d+$/, readdir $d;
}
sub wait_gone ($$) {
    my ($pid, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        waitpid($pid, WNOHANG);
        return 1 unless is_running($pid);
        sleep 0.02;
    }
    return !is_running($pid);
}

sub read_pid_file {
    open my $fh, '<', $PidFile or return undef;
    my $pid = <$fh>;
    return (defined $pid && $pid =~ /^\s*(\d+)/) ? $1 : undef;
}

# Stop the nginx we started (or a stale one found via the pid file):
# QUIT, then TERM, then KILL of its whole process group; stray workers too.
sub stop_nginx {
    my $name = shift // 'cleanup';
    my $pid = $NginxPid;
    if (!$pid) {
        $pid = read_pid_file() or return;
        open my $fh, '<', "/proc/$pid/cmdline" or return unlink $PidFile;
        my $cmd = do { local $/; <$fh> } // '';
        return unlink $PidFile unless $cmd =~ /nginx/;
    }
    my $grace = $UseValgrind ? 60 : 5;
    my $pgid = (proc_stat($pid))[2];
    # nginx daemonizes with setsid() and our valgrind child calls setpgrp(),
    # so the process group id is the master's pid: its members are ours.
    my $own_group = $pid != getpgrp() && (!defined $pgid || $pgid == $pid);
    if (is_running($pid)) {
        kill 'QUIT', $pid;
        if (!wait_gone($pid, $grace)) {
            warn "$name - nginx $pid did not quit in ${grace}s, sending TERM\n";
            kill 'TERM', $pid;
            if (!wait_gone($pid, 3)) {
                warn "$name - killing nginx $pid with SIGKILL\n";
                kill 'KILL', ($own_group ? -$pid : $pid);
                wait_gone($pid, 3);
            }
        }
    }
    if ($own_group) {
        for my $try (1 .. 100) {
            my @left = group_members($pid) or last;
            warn "$name - killing stray nginx processes @left\n" if $try == 1;
            kill 'KILL', @left;
            sleep 0.05;
        }
    }
    waitpid($pid, WNOHANG);
    unlink $PidFile;
    undef $NginxPid;
}

# Run nginx; returns the exit status of the launched command for daemon mode,
# or 0 once a foreground (valgrind) nginx has written its pid file.
sub spawn_nginx {
    my ($name, $valgrind) = @_;
    my @cmd = ($NginxBinary, ($NginxVersion && $NginxVersion >= 1.019005 ? ('-e', $ErrLogFile) : ()),
               '-p', "$ServRoot/", '-c', $ConfFile);
    if ($valgrind) {
        unshift @cmd, qw(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite
                         --num-callers=30 --error-exitcode=0), "--log-file=$LogDir/valgrind.%p.log",
                      (-f 'valgrind.suppress' ? ('--suppressions=valgrind.suppress') : ());
    }
    warn "starting: @cmd\n" if $Verbose;
    my $pid = fork;
    bail_out("$name - fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        $InSubprocess = 1;
        setpgrp(0, 0) if $valgrind;
        open STDIN, '<', '/dev/null'; open STDOUT, '>', '/dev/null';
        open STDERR, '>>', $StderrFile;
        exec @cmd or POSIX::_exit(127);
    }
    if (!$valgrind) {
        my $end = time + 30;
        while (time < $end) {
            my $r = waitpid($pid, WNOHANG);
            return $? if $r == $pid;
            sleep 0.01;
        }
        kill 'KILL', $pid; waitpid($pid, 0);
        return -1;
    }
    $NginxPid = $pid;
    my $end = time + 120;
    while (time < $end) {
        return 0 if (read_pid_file() // 0) == $pid;   # daemon off: same pid
        if (waitpid($pid, WNOHANG) == $pid) { undef $NginxPid; return $? || 1 }
        sleep 0.05;
    }
    return -1;
}

sub slurp { open my $fh, '<', shift or return ''; local $/; my $s = <$fh>; $s // '' }

sub start_nginx {
    my ($name, $valgrind) = @_;
    for my $try (1 .. 20) {
        my $errpos = -s $StderrFile || 0;
        $ErrLogFilePos = -s $ErrLogFile || 0;   # skip lines of failed attempts
        my $status = spawn_nginx($name, $valgrind);
        if ($status == 0) {
            return if $valgrind;
            my $end = time + 10;
            while (time < $end) {
                if (my $pid = read_pid_file()) { $NginxPid = $pid; return }
                sleep 0.01;
            }
            bail_out("$name - nginx started but wrote no pid file $PidFile");
        }
        my $err = substr(slurp($StderrFile), $errpos);
        if ($err =~ /Address already in use/) { sleep 0.25; next }
        stop_nginx($name);
        bail_out("$name - Cannot start nginx (status $status): $err");
    }
    bail_out("$name - Cannot start nginx: port $ServerPort stays in use");
}

# ---------------------------------------------------------- server root
sub setup_server_root {
    if (-d $ServRoot) {
        remove_tree($ConfDir, $LogDir, $HtmlDir, glob("$ServRoot/*_temp"), glob("$ServRoot/*cache"));
    }
    make_path($ServRoot, $LogDir, $HtmlDir, $ConfDir);
    -d $ConfDir or bail_out("cannot create $ConfDir");
    open my $fh, '>', "$HtmlDir/index.html" or bail_out("cannot write index.html: $!");
    print $fh '<html><head><title>It works!</title></head><body>It works!</body></html>';
    close $fh;
}

sub write_user_files {
    my ($block) = @_;
    my $name = $block->name;
    my $files = $block->user_files or return;
    if (!ref $files) {
        my @f;
        for (split /^/, $files) {
            if (/^>>> (\S+)(?:\s+(.+))?/) { push @f, [$1, undef, $2]; next }
            $f[-1][1] .= $_ if @f;
        }
        $files = \@f;
    }
    ref $files eq 'ARRAY' or bail_out("$name - --- user_files must be a string or an ARRAY");
    for (@$files) {
        my ($fname, $body, $date) = @$_;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        make_path($1) if $path =~ m{(.*)/} && !-d $1;
        open my $out, '>', $path or bail_out("$name - Cannot open $path for writing: $!");
        binmode $out;
        print $out expand_env_in_text($body // '', $name);
        close $out;
        system("TZ=GMT touch -t '$date' '$path'") if $date;
    }
}

sub write_config {
    my ($block, $config, $valgrind) = @_;
    my $name = $block->name;
    my $text;
    if (!defined $config) {
        defined $PrevConfText
            or bail_out("$name - No '--- config' section specified and could not get previous one");
        $text = $PrevConfText;
    } else {
        my $http_config = expand_env_in_text($block->http_config // '', $name);
        my $main_config = expand_env_in_text($block->main_config // '', $name);
        my $post_main   = expand_env_in_text($block->post_main_config // '', $name);
        my $server_name = $block->server_name // $ServerName;
        my $log_level   = $block->log_level || $LogLevel;
        my $daemon      = $valgrind ? 'off' : 'on';
        my $V = `$NginxBinary -V 2>&1`;
        my $temps = join ' ', map { "${_}_temp_path $ServRoot/${_}_temp;" }
            grep { $V !~ /--without-http_${_}_module/ && $http_config !~ /\b${_}_temp_path\b/ }
            qw(client_body proxy fastcgi scgi uwsgi);
        my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" } @EnvToNginx;
        my $root = $NoRootLocation ? ''
            : "        location / {\n            root $HtmlDir;\n            index index.html index.htm;\n        }\n";
        my $user = $> == 0 ? "user root;\n" : '';
        $text = <<"_EOC_";
worker_processes  $Workers;
daemon $daemon;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $log_level;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
    $temps
    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config

    server {
        listen          $ServerAddr:$ServerPort;
        server_name     '$server_name';
        client_max_body_size 30M;

        # Begin test case config...
$config
        # End test case config.

$root    }
}

$post_main

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
}
$user
_EOC_
    }
    $PrevConfText = $text;
    open my $out, '>', $ConfFile or bail_out("Can't open $ConfFile for writing: $!");
    print $out $text;
    close $out;
}

# ------------------------------------------------------------ error log
sub read_new_lines {
    my ($file, $pos_ref) = @_;
    open my $in, '<', $file or return [];
    seek $in, $$pos_ref, 0 if !$CheckAccumErrLog && $$pos_ref > 0;
    my @lines = <$in>;
    $$pos_ref = tell $in unless $CheckAccumErrLog;
    return \@lines;
}

# error.log lines written since the last call (within the current block);
# with $with_stderr also nginx's captured stderr (used by --- must_die).
sub error_log_data (;$) {
    my $with_stderr = shift;
    sleep($UseValgrind ? 0.3 : $TestNginxSleep * 3);
    my $lines = read_new_lines($ErrLogFile, \$ErrLogFilePos);
    push @$lines, @{ read_new_lines($StderrFile, \$StderrPos) } if $with_stderr;
    return $lines;
}

sub pattern_list {
    my $p = shift;
    return [grep { $_ ne '' } split /\n+/, do { chomp(my $c = $p); $c }] if !ref $p;
    return [$p] if ref $p eq 'Regexp';
    return [@$p];
}
sub line_matches { my ($l, $p) = @_; ref $p ? $l =~ /$p/ : index($l, $p) >= 0 }

sub check_error_log {
    my ($block, $rep, $with_stderr) = @_;
    my $name = $block->name;
    my $lines = error_log_data($with_stderr);
    my %warn = map { $_ => 1 } qw(alert crit emerg);
    for my $sec (qw(error_log no_error_log)) {
        my $v = $block->$sec;
        next unless defined $v;
        for my $p (@{ pattern_list($v) }) {
            delete $warn{$1} if defined $p && !ref $p && $p =~ /\[(alert|crit|emerg)/;
        }
    }
    if (defined(my $pats = $block->error_log)) {
        for my $pat (@{ pattern_list($pats) }) {
            next unless defined $pat;
            if (grep { line_matches($_, $pat) } @$lines) {
                Test::More::pass("$name - pattern \"$pat\" matches a line in error.log (req $rep)");
            } else {
                Test::More::fail("$name - pattern \"$pat\" should match a line in error.log (req $rep)");
                Test::More::diag("last lines examined:\n", @$lines[ ($#$lines > 15 ? $#$lines - 15 : 0) .. $#$lines ]);
            }
        }
    }
    if (defined(my $pats = $block->no_error_log)) {
        for my $pat (@{ pattern_list($pats) }) {
            next unless defined $pat;
            my $p = fmt_str($pat);
            my @hit = grep { line_matches($_, $pat) } @$lines;
            if (@hit) {
                Test::More::fail("$name - pattern \"$p\" should not match any line in error.log but matches line \""
                                 . fmt_str($hit[0]) . "\" (req $rep)" . (@hit > 1 ? " and " . (@hit - 1) . " more" : ''));
            } else {
                Test::More::pass("$name - pattern \"$p\" does not match a line in error.log (req $rep)");
            }
        }
    }
    for my $line (@$lines) {
        warn "WARNING: $name - " . fmt_str($line) . "\n"
            if $line =~ /\[(alert|crit|emerg)\]/ && $warn{$1};
        Test::More::fail("$name - $1") if $line =~ /(\bAssertion .*?failed\b.*)/;
    }
}

# ------------------------------------------------------- mock TCP server
sub start_tcp_server {
    my ($block) = @_;
    my $name = $block->name;
    my $target = expand_env_in_text(scalar $block->tcp_listen, $name);
    my $reply = $block->tcp_reply;
    bail_out("$name - no --- tcp_reply specified but --- tcp_listen is specified") unless defined $reply;
    my $req_len = $block->tcp_query_len;
    $req_len //= length $block->tcp_query if defined $block->tcp_query;
    my $qfile = defined $req_len ? "$LogDir/tcp_query.$$" : undef;
    unlink $qfile if $qfile;
    my $sock;
    for (1 .. 50) {
        if ($target =~ /^\d+$/) {
            $sock = IO::Socket::INET->new(LocalHost => '127.0.0.1', LocalPort => $target,
                                          Proto => 'tcp', ReuseAddr => 1, Listen => 5);
        } elsif ($target =~ /\.sock$/) {
            unlink $target;
            $sock = IO::Socket::UNIX->new(Local => $target, Listen => 5);
        } else {
            bail_out("$name - bad tcp_listen target: $target");
        }
        last if $sock;
        sleep 0.1;
    }
    bail_out("$name - failed to create the tcp listening socket on $target: $!") unless $sock;
    my $pid = fork;
    bail_out("$name - fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        $InSubprocess = 1;
        @SIG{qw(INT TERM HUP)} = ('DEFAULT') x 3;
        eval {
            my $c = $sock->accept or die "accept failed: $!";
            my $buf = '';
            while (1) {
                my $n = sysread($c, my $chunk, 4096);
                last unless $n;
                $buf .= $chunk;
                if ($qfile) {
                    open my $o, '>', "$qfile.tmp" or die; print $o $buf; close $o;
                    rename "$qfile.tmp", $qfile;
                }
                last if !$req_len || length($buf) >= $req_len;
            }
            my $delay = parse_time($block->tcp_reply_delay);
            sleep $delay if $delay;
            $reply = $reply->($buf) if ref $reply eq 'CODE';
            for my $r (ref $reply eq 'ARRAY' ? @$reply : ($reply)) {
                while (length $r) { my $n = syswrite($c, $r) or last; substr($r, 0, $n) = '' }
            }
            if (defined $block->tcp_no_close) { sleep 1 while 1 }
            close $c;
        };
        warn "$name - TCP server: $@" if $@;
        POSIX::_exit(0);
    }
    $TcpServerPid = $pid;
    return { sock => $sock, qfile => $qfile, target => $target };
}

sub finish_tcp_server {
    my ($block, $srv) = @_;
    my $name = $block->name;
    my $buf = $srv->{qfile} ? slurp($srv->{qfile}) : '';
    is_str($buf, scalar $block->tcp_query, "$name - tcp_query ok") if defined $block->tcp_query;
    Test::More::is(length($buf), scalar $block->tcp_query_len, "$name - TCP query length ok")
        if defined $block->tcp_query_len;
    kill_tcp_server();
    close $srv->{sock};
    unlink $srv->{target} if $srv->{target} =~ /\.sock$/;
}

sub kill_tcp_server {
    return unless $TcpServerPid;
    kill 'KILL', $TcpServerPid;
    waitpid($TcpServerPid, 0);
    undef $TcpServerPid;
}

# ------------------------------------------------------------- valgrind
sub check_valgrind {
    my ($name) = @_;
    for my $f (sort glob "$LogDir/valgrind.*.log") {
        my (@recs, @cur);
        for (split /\n/, slurp($f)) {
            next unless s/^==\d+==\s?//;
            if (/^\s*$/) { push @recs, [@cur] if @cur; @cur = (); next }
            push @cur, $_;
        }
        push @recs, [@cur] if @cur;
        for my $r (@recs) {
            my $head = $r->[0];
            my $bad = $head =~ /Invalid (?:read|write|free)|Mismatched free|Syscall param|uninitialised/
                   || ($head =~ /definitely lost in loss record/ && grep { /$ValgrindLeakPat/ } @$r);
            next unless $bad;
            my $n = @$r > 25 ? 25 : @$r;
            Test::More::ok(0, "$name - valgrind: $head");
            Test::More::diag("$f:\n", join("\n", @$r[0 .. $n - 1]), "\n");
        }
    }
}

# ------------------------------------------------------------ sanitizers
# TEST_NGINX_CHECK_SANITIZER=1 (build.sh test --asan): nginx writes the
# reports of an ASan/UBSan module to its stderr, which is the error log
# once it runs; one failing test per report found after the block.
sub check_sanitizer {
    my ($name) = @_;
    for my $f ($ErrLogFile, $StderrFile) {
        my @lines = split /\n/, slurp($f);
        for my $i (0 .. $#lines) {
            next unless $lines[$i] =~ /runtime error: |ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: UndefinedBehaviorSanitizer/;
            Test::More::ok(0, "$name - sanitizer: $lines[$i]");
            my $end = $i + 30 > $#lines ? $#lines : $i + 30;
            Test::More::diag(join "\n", @lines[$i .. $end]);
            last;
        }
    }
}

# -------------------------------------------------------------- driver
sub cleanup {
    return if $InSubprocess || $$ != $MainPid;
    kill_tcp_server();
    stop_nginx('cleanup');
}

sub should_skip {
    my ($block) = @_;
    my $name = $block->name;
    if (defined(my $s = $block->skip_nginx)) {
        $s =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*?))?\s*$/
            or bail_out("$name - Invalid --- skip_nginx spec: $s");
        my $ver = sprintf "%d.%03d%03d", $3, $4, $5;
        my $hit = defined $NginxVersion ? eval "$NginxVersion $2 $ver" : $2 =~ /</;
        return ($1, $6 || "nginx version $2 $3.$4.$5") if $hit;
    }
    if (defined(my $s = $block->skip_eval)) {
        if ($s =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            my ($n, $code) = ($1, $2);
            my $hit = eval $code;
            bail_out("$name - skip_eval - failed to eval \"$code\": $@") if $@;
            return ($n, 'skip_eval') if $hit;
        }
    }
    return;
}

sub run_block {
    my ($block) = @_;
    my $name = $block->name;
    return if defined $block->SKIP;
    $RandPorts = {};
    my ($nskip, $reason) = should_skip($block);
    if (defined $nskip) {
        for (1 .. $RepeatEach) { SKIP: { Test::More::skip("$name - $reason", $nskip) } }
        return;
    }
    my $must_die = $block->must_die;
    my $valgrind = $UseValgrind && !defined $must_die;
    stop_nginx($name);
    my $config = expand_env_in_text(scalar $block->config, $name);
    setup_server_root();
    write_user_files($block);
    write_config($block, $config, $valgrind);
    ($ErrLogFilePos, $StderrPos) = (0, 0);

    if (defined $must_die) {
        for my $i (0 .. $RepeatEach - 1) {
            my $status = spawn_nginx($name, 0);
            if ($status == -1) {
                Test::More::fail("$name - failed to execute the nginx command line");
            } elsif ($status & 127) {
                Test::More::fail("$name - nginx killed by signal " . ($status & 127));
            } elsif ($must_die =~ /^\s*(\d+)\s*$/) {
                Test::More::is($1, $status >> 8, "$name - die with the expected exit code");
            } else {
                Test::More::isnt($status, 0, "$name - die as expected");
            }
            check_error_log($block, $i, 1);
            if ($status == 0) {
                warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
                for (1 .. 100) { last if read_pid_file(); sleep 0.02 }
                stop_nginx($name);
            }
        }
        return;
    }

    local $UseValgrind = $valgrind;
    start_nginx($name, $valgrind);
    if (defined(my $init = $block->init)) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }
    for my $i (0 .. $RepeatEach - 1) {
        my $srv = defined $block->tcp_listen ? start_tcp_server($block) : undef;
        write_user_files($block) if $i > 0;
        $RunTestHelper->($block, $i);
        finish_tcp_server($block, $srv) if $srv;
    }
    stop_nginx($name);
    check_valgrind($name) if $valgrind;
    check_sanitizer($name) if $ENV{TEST_NGINX_CHECK_SANITIZER};
}

sub run_tests () {
    my $bin = find_binary($NginxBinary)
        or bail_out("Cannot find the nginx executable '$NginxBinary' (set TEST_NGINX_BINARY)");
    $NginxBinary = $bin;
    $NginxVersion = nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;
    $SIG{PIPE} = 'IGNORE';
    my %signo = (HUP => 1, INT => 2, TERM => 15);
    for my $sig (keys %signo) {
        $SIG{$sig} = sub { cleanup(); warn "caught SIG$sig, nginx stopped\n"; exit(128 + $signo{$sig}) };
    }
    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_block($block);
    }
    cleanup();
}

END {
    local $?;
    cleanup();
}

1;
