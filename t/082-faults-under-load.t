# Faults under load (docs/reliability.md): a reload (HUP), a routing table
# replaced by rename(), the LMDB reader table exhausted and a binary
# upgrade (USR2), each while a forked client sends a steady stream of
# requests on fresh connections; and a worker killed while it holds the
# zone's mutex (stopped there with gdb).  The binary upgrade and the gdb
# block are skipped under valgrind (nginx refuses USR2 there, and gdb
# cannot attach to a process run by valgrind).
#
# The upstream is a server block of the nginx under test on
# $TEST_NGINX_RAND_PORT_1 that echoes the upstream name (Host) and URI as
# a JSON document.  The load child records one line per response
# ("ok", "closed" or "bad <detail>") in a file the parent reads once the
# child has finished.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use File::Temp qw(tempdir);
use POSIX ();
use JSON::PP ();
use Time::HiRes ();
use EdgeOrch;

edge_orch_setup();

repeat_each(1);
workers(2);
master_on();
no_shuffle();
worker_connections(1024);
log_level('info');

my $tmp = tempdir(CLEANUP => 1);

sub write_file {
    my ($name, $data) = @_;
    open my $fh, '>', $name or die "$name: $!";
    print $fh $data;
    close $fh;
}

my $table = <<'_JSON_';
{
  "schema": 1,
  "routes": [ { "service": "cms", "region": "*", "upstream": "cms_table" } ]
}
_JSON_
(my $table2 = $table) =~ s/cms_table/cms_table2/;

write_file("$tmp/routes.json", $table);
write_file("$tmp/routes2.json", $table2);

# TEST 2: t2 replaced by t2.new; TEST 3: t3 replaced by t3.new, whose
# reader table the helper fills first
for my $t (qw(t2 t3)) {
    routes_cli('compile', "$tmp/routes.json", "$tmp/$t");
    routes_cli('compile', "$tmp/routes2.json", "$tmp/$t.new");
}

# a helper that takes every reader slot of an LMDB environment (read-only
# transactions with MDB_NOTLS until MDB_READERS_FULL), prints how many it
# holds, keeps them for argv[2] seconds and releases them cleanly
write_file("$tmp/holdreaders.c", <<'_C_');
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    MDB_env *env;
    MDB_txn *txn[1024];
    int      n = 0, rc, i;

    if (argc != 3) { fprintf(stderr, "usage: holdreaders DIR SECONDS\n"); return 2; }
    if ((rc = mdb_env_create(&env)) != 0
        || (rc = mdb_env_set_maxdbs(env, 8)) != 0
        || (rc = mdb_env_open(env, argv[1], MDB_RDONLY | MDB_NOTLS, 0644)) != 0)
    {
        printf("error %s\n", mdb_strerror(rc));
        return 1;
    }
    while (n < 1024 && (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn[n])) == 0) {
        n++;
    }
    printf("held %d %s\n", n, mdb_strerror(rc));
    fflush(stdout);
    sleep(atoi(argv[2]));
    for (i = 0; i < n; i++) {
        mdb_txn_abort(txn[i]);
    }
    mdb_env_close(env);
    return 0;
}
_C_
system("gcc -O1 -o '$tmp/holdreaders' '$tmp/holdreaders.c' -llmdb") == 0
    or die "cannot build the LMDB reader helper (gcc, liblmdb-dev needed)";

$ENV{TEST_NGINX_TMP} = $tmp;
$ENV{TEST_NGINX_HOLDREADERS} = "$tmp/holdreaders";

# a valid answer to GET /p: {"a":{"u":"<name>","p":"/_frag/a"},
# "b":{"u":"<name>","p":"/_frag/b"}}; returns "" when valid, else why not
sub check_doc {
    my ($body, $names) = @_;
    my $d = eval { JSON::PP->new->decode($body // '') };
    return "not JSON" unless ref $d eq 'HASH';
    return "keys " . join(',', sort keys %$d)
        unless join(',', sort keys %$d) eq 'a,b';
    for my $k (qw(a b)) {
        my $f = $d->{$k};
        return "fragment $k" unless ref $f eq 'HASH' && ($f->{p} // '') eq "/_frag/$k"
                                    && grep { $_ eq ($f->{u} // '') } @$names;
    }
    return '';
}

# fork a child that sends GET /p on fresh connections for $secs seconds
# and writes one line per response to $file; returns the child's pid
sub start_load {
    my ($file, $secs, $names) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $out, '>', $file or POSIX::_exit(1);
    $out->autoflush(1);
    my $end = Time::HiRes::time() + $secs;
    while (Time::HiRes::time() < $end) {
        my $r = eval { EdgeOrch::http_get('/p', timeout => 10) };
        my $line;
        if (!$r) { $line = "bad connect: $@" }
        elsif ($r->{error}) { $line = "bad $r->{error}" }
        elsif ($r->{raw} eq '') { $line = "closed" }
        elsif ($r->{status} != 200) { $line = "bad status $r->{status}" }
        else {
            my $why = check_doc($r->{body}, $names);
            $line = $why eq '' ? "ok " . ($r->{headers}{'x-upstream'} // '-')
                               : "bad $why: $r->{body}";
        }
        $line =~ s/\n/ /g;
        print $out "$line\n";
    }
    close $out;
    POSIX::_exit(0);    # never run the runner's END blocks in the child
}

# wait for the load child, return (number ok, number closed, @bad lines,
# %upstreams seen)
sub finish_load {
    my ($pid, $file) = @_;
    waitpid $pid, 0;
    open my $fh, '<', $file or die "$file: $!";
    my ($ok, $closed, @bad, %up) = (0, 0);
    while (<$fh>) {
        chomp;
        if (/^ok (\S*)/) { $ok++; $up{$1}++ }
        elsif ($_ eq 'closed') { $closed++ }
        else { push @bad, $_ }
    }
    return ($ok, $closed, \@bad, \%up);
}

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
upstream cms_default { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream cms_table { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream cms_table2 { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / { return 200 '{"u":"$host","p":"$uri"}'; }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location /_frag/ {
    internal;
    proxy_pass http://$edge_orch_upstream;
}
_EOC_
    for my $sec (qw(no_error_log)) {
        next if defined $block->$sec;
        $block->set_value($sec, "[alert]\n[crit]\n[emerg]\nsignal 11\n");
    }
});

run_tests();

__DATA__

=== TEST 1: nginx -s reload (HUP) while requests run: every answer a document or a clean close; the zone survives
The load child sends requests on fresh connections for 2 s; the master gets
HUP after 0.5 s.  Old workers finish what they accepted and exit; a
connection they close without answering counts as a clean close.  After the
reload the cached fragment is still a hit.
--- http_config
edge_orch_zone name=z:1m;
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a /_frag/a upstream=cms_default ttl=60s;
    edge_orch_fragment b /_frag/b upstream=cms_default;
}
--- init
my $r = EdgeOrch::http_get('/p');
Test::More::like($r->{headers}{'cache-status'} // '', qr/edge-orch\/a; fwd=miss.*stored/,
                 "TEST 1 init: fragment a stored before the reload");
my $file = "$ENV{TEST_NGINX_TMP}/load1";
my $pid = main::start_load($file, 2, ['cms_default']);
select undef, undef, undef, 0.5;
my $master = EdgeOrch::nginx_master_pid();
my @old = EdgeOrch::nginx_worker_pids($master);
kill 'HUP', $master or die "kill HUP $master: $!";
my ($ok, $closed, $bad) = main::finish_load($pid, $file);
Test::More::is(scalar @$bad, 0,
               "TEST 1: $ok documents, $closed clean closes, no 5xx or broken body during the reload")
    or Test::More::diag(join "\n", @$bad[0 .. ($#$bad < 4 ? $#$bad : 4)]);
Test::More::cmp_ok($ok, '>=', 10, "TEST 1: the load kept being answered ($ok documents)");
for (1 .. 600) {
    last if EdgeOrch::error_log_count(qr/worker process \d+ exited with code 0/) >= @old;
    select undef, undef, undef, 0.05;
}
my %old = map { $_ => 1 } @old;
my @new = EdgeOrch::nginx_worker_pids($master);
Test::More::is(scalar(grep { $old{$_} } @new), 0,
               "TEST 1: only new workers after the reload (@old -> @new)");
--- request
GET /p
--- response_body chomp
{"a":{"u":"cms_default","p":"/_frag/a"},"b":{"u":"cms_default","p":"/_frag/b"}}
--- response_headers_like
Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; fwd=miss.*
--- error_log eval
[qr/\[notice\] .*reconfiguring/,
 qr/worker process \d+ exited with code 0/]
--- timeout: 15



=== TEST 2: the routing table replaced by rename() while requests run: all answers valid, the new route served
As t/012-routes-faults.t TEST 7, with a load child sending requests for
2 s; the directories are swapped after 0.5 s.
--- http_config
edge_orch_routes $TEST_NGINX_TMP/t2;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=cms_default service=cms;
    edge_orch_fragment b /_frag/b upstream=cms_default service=cms;
    add_header X-Upstream $edge_orch_routes;
}
--- init
my $t = $ENV{TEST_NGINX_TMP};
EdgeOrch::wait_error_log(qr{t2" generation \d+ loaded}, 2);
my $file = "$t/load2";
my $pid = main::start_load($file, 2, ['cms_table', 'cms_table2']);
select undef, undef, undef, 0.5;
rename "$t/t2", "$t/t2.old" or die "rename: $!";
rename "$t/t2.new", "$t/t2" or die "rename: $!";
my ($ok, $closed, $bad, $up) = main::finish_load($pid, $file);
Test::More::is(scalar(@$bad) + $closed, 0,
               "TEST 2: $ok answers during the rename, all 200 documents from one table")
    or Test::More::diag(join "\n", @$bad[0 .. ($#$bad < 4 ? $#$bad : 4)]);
Test::More::cmp_ok($ok, '>=', 10, "TEST 2: the load kept being answered");
Test::More::note("TEST 2 routes seen: ", join ' ', map { "$_ x$up->{$_}" } sort keys %$up);
# the rename was at 0.5 s, the load ran until 2 s: each worker rechecks
# once a second, so both serve the new table by now
my @res = EdgeOrch::http_parallel([('/p') x 20]);
Test::More::is(scalar(grep { $_->{status} == 200 && $_->{body} =~ /"u":"cms_table2"/
                             && $_->{body} !~ /"u":"cms_table"[,}]/ } @res),
               20, "TEST 2: 20 requests after the load: all from the new table");
--- request
GET /p
--- response_body chomp
{"a":{"u":"cms_table2","p":"/_frag/a"},"b":{"u":"cms_table2","p":"/_frag/b"}}
--- error_log eval
[qr/\[notice\] .*edge_orch: routing table ".*\/t2" was replaced, reopening/]
--- timeout: 15



=== TEST 3: the LMDB reader table exhausted: last-known-good snapshot, one error line per worker, recovery after
The helper takes all reader slots (126) of the replacement table before it
is renamed into place.  The workers notice the rename, cannot begin a read
transaction on the new table (MDB_READERS_FULL) and keep serving the
last-known-good snapshot under load.  Once the helper exits, the retry
(once a second) opens the new table.
--- http_config
edge_orch_routes $TEST_NGINX_TMP/t3;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=cms_default service=cms;
    edge_orch_fragment b /_frag/b upstream=cms_default service=cms;
    add_header X-Upstream $edge_orch_routes;
}
--- init
my $t = $ENV{TEST_NGINX_TMP};
EdgeOrch::wait_error_log(qr{t3" generation \d+ loaded}, 2);
open my $h, '-|', $ENV{TEST_NGINX_HOLDREADERS}, "$t/t3.new", 5
    or die "holdreaders: $!";
my $held = <$h> // '';
Test::More::like($held, qr/^held 126 MDB_READERS_FULL/, "TEST 3: the helper holds every reader slot")
    or Test::More::diag($held);
rename "$t/t3", "$t/t3.old" or die "rename: $!";
rename "$t/t3.new", "$t/t3" or die "rename: $!";
my $file = "$t/load3";
my $pid = main::start_load($file, 2, ['cms_table']);
my ($ok, $closed, $bad, $up) = main::finish_load($pid, $file);
Test::More::is(scalar(@$bad) + $closed, 0,
               "TEST 3: $ok answers while the reader table is full, all from the last-known-good table")
    or Test::More::diag(join "\n", @$bad[0 .. ($#$bad < 4 ? $#$bad : 4)]);
Test::More::cmp_ok($ok, '>=', 10, "TEST 3: the load kept being answered");
my $n = EdgeOrch::error_log_count(qr/\[error\] .*edge_orch: routing table problem: .*MDB_READERS_FULL.*serving the last-known-good table/);
Test::More::ok($n >= 1 && $n <= 2, "TEST 3: $n MDB_READERS_FULL error line(s), at most one per worker");
close $h;    # waits until the helper has released its slots and exited
select undef, undef, undef, 1.2;
# requests drive the retry: within ~2 s both workers have reopened
for (1 .. 40) {
    my @res = EdgeOrch::http_parallel([('/p') x 4]);
    last if 4 == grep { $_->{body} =~ /"u":"cms_table2"/ } @res;
    select undef, undef, undef, 0.1;
}
my @res = EdgeOrch::http_parallel([('/p') x 20]);
Test::More::is(scalar(grep { $_->{status} == 200 && $_->{body} =~ /"u":"cms_table2"/ } @res),
               20, "TEST 3: after the helper exits the new table is served");
--- request
GET /p
--- response_body chomp
{"a":{"u":"cms_table2","p":"/_frag/a"},"b":{"u":"cms_table2","p":"/_frag/b"}}
--- error_log eval
[qr/\[error\] .*edge_orch: routing table problem: .*MDB_READERS_FULL/,
 qr/\[notice\] .*edge_orch: routing table ".*\/t3" is readable again/]
--- timeout: 20



=== TEST 4: binary upgrade (USR2, WINCH, QUIT) while requests run: every answer a document or a clean close
The load child sends requests for 3 s.  After 0.5 s the master gets USR2:
it starts a new master from the same binary (the listening sockets are
inherited, the module is loaded again, shared zones are created anew);
then the old master gets WINCH (its workers finish and exit) and QUIT.
No request may get a 5xx or a broken document on the way.
--- http_config
edge_orch_zone name=z:1m;
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a /_frag/a upstream=cms_default ttl=60s;
    edge_orch_fragment b /_frag/b upstream=cms_default;
}
--- init
my $file = "$ENV{TEST_NGINX_TMP}/load4";
my $pid = main::start_load($file, 3, ['cms_default']);
select undef, undef, undef, 0.5;
my $old = EdgeOrch::nginx_master_pid();
my $pidfile = server_root() . "/logs/nginx.pid";
kill 'USR2', $old or die "kill USR2 $old: $!";
my $new;
for (1 .. 200) {
    if (-e "$pidfile.oldbin" && open my $fh, '<', $pidfile) {
        my $p = <$fh>;
        if (defined $p && $p =~ /^(\d+)/ && $1 != $old) { $new = $1; last }
    }
    select undef, undef, undef, 0.05;
}
Test::More::ok($new, "TEST 4: a new master started (" . ($new // 'none') . ")");
select undef, undef, undef, 0.5;
kill 'WINCH', $old;
select undef, undef, undef, 0.5;
kill 'QUIT', $old;
my ($ok, $closed, $bad) = main::finish_load($pid, $file);
Test::More::is(scalar @$bad, 0,
               "TEST 4: $ok documents, $closed clean closes, no 5xx or broken body during the upgrade")
    or Test::More::diag(join "\n", @$bad[0 .. ($#$bad < 4 ? $#$bad : 4)]);
Test::More::cmp_ok($ok, '>=', 10, "TEST 4: the load kept being answered ($ok documents)");
for (1 .. 100) {
    last unless kill 0, $old;
    select undef, undef, undef, 0.05;
}
Test::More::ok(!kill(0, $old), "TEST 4: the old master is gone");
--- request
GET /p
--- response_body chomp
{"a":{"u":"cms_default","p":"/_frag/a"},"b":{"u":"cms_default","p":"/_frag/b"}}
--- skip_eval: 10: $ENV{TEST_NGINX_USE_VALGRIND}
--- timeout: 20



=== TEST 5: a worker killed while it holds the zone's mutex: the master unlocks it, the others go on
gdb stops one worker in ngx_slab_alloc_locked() — only ever called with the
zone's mutex held — while it stores a fragment, and the worker is killed
there.  nginx's master force-unlocks a dead worker's shared-memory mutexes
("shared memory zone ... was locked by PID"); the new and remaining
workers must go on serving (and storing) without hanging.
--- http_config
edge_orch_zone name=z:1m;
--- config
location = /p {
    edge_orch zone=z;
    edge_orch_fragment a /_frag/a upstream=cms_default ttl=60s key=$arg_k;
    edge_orch_fragment b /_frag/b upstream=cms_default;
}
--- init
my $gdb = `sh -c 'command -v gdb'`;
chomp $gdb;
if (!$gdb) {
    Test::More::diag("gdb not installed: nothing to stop the worker with");
    Test::More::pass("TEST 5: skipped (no gdb)");
    return;
}
my $master = EdgeOrch::nginx_master_pid();
my @w = EdgeOrch::nginx_worker_pids($master);
my $victim = $w[0];
my $out = "$ENV{TEST_NGINX_TMP}/gdb5.out";
my $g = fork // die "fork: $!";
if ($g == 0) {
    open STDOUT, '>', $out; open STDERR, '>&', \*STDOUT;
    exec $gdb, '-q', '-p', $victim, '-batch',
         '-ex', 'set pagination off',
         '-ex', 'break ngx_slab_alloc_locked',
         '-ex', 'continue',
         '-ex', "shell kill -9 $victim";
    POSIX::_exit(1);
}
select undef, undef, undef, 1.5;    # gdb attached and waiting
# requests with new keys until the victim stops in the allocator
for my $k (1 .. 200) {
    last unless kill 0, $victim;
    my $r = eval { EdgeOrch::http_get("/p?k=$k", timeout => 2) };
    select undef, undef, undef, 0.02;
}
waitpid $g, 0;
Test::More::ok(!kill(0, $victim), "TEST 5: the worker was killed inside the zone lock");
EdgeOrch::wait_error_log(qr/exited on signal 9/, 1);
# the remaining and the respawned worker must serve, store and hit
my ($ok, $bad) = (0, 0);
for my $k (1000 .. 1040) {
    my $r = EdgeOrch::http_get("/p?k=$k", timeout => 5);
    if (($r->{status} // 0) == 200 && main::check_doc($r->{body}, ['cms_default']) eq '') {
        $ok++;
    } else {
        $bad++;
    }
}
Test::More::is($bad, 0, "TEST 5: $ok answers after the kill, none failed or hung");
--- request
GET /p?k=1000
--- response_body chomp
{"a":{"u":"cms_default","p":"/_frag/a"},"b":{"u":"cms_default","p":"/_frag/b"}}
--- response_headers_like
Cache-Status: edge-orch/a; hit; ttl=\d+, edge-orch/b; fwd=miss.*
--- error_log eval
[qr/shared memory zone "z" was locked by \d+/,
 qr/exited on signal 9/]
--- no_error_log
[crit]
[emerg]
signal 11
--- skip_eval: 8: $ENV{TEST_NGINX_USE_VALGRIND}
--- timeout: 20
