# Routing table faults: missing at start, appearing later, corrupt,
# truncated, deleted while running (last-known-good), replaced by rename.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use File::Temp qw(tempdir);
use EdgeOrch;

edge_orch_setup();

my $table = <<'_JSON_';
{
  "schema": 1,
  "routes": [
    { "service": "cms", "region": "*", "upstream": "cms_table" },
    { "service": "cms", "region": "XX", "upstream": "cms_typo" }
  ]
}
_JSON_

my $table2 = $table;
$table2 =~ s/cms_table/cms_table2/;

my $tmp = tempdir(CLEANUP => 1);

sub write_file {
    my ($name, $data) = @_;
    open my $fh, '>', $name or die "$name: $!";
    binmode $fh;
    print $fh $data;
    close $fh;
}

write_file("$tmp/routes.json", $table);
write_file("$tmp/routes2.json", $table2);

# a directory with garbage in place of data.mdb
mkdir "$tmp/garbage";
write_file("$tmp/garbage/data.mdb", "this is not an LMDB file\n" x 1000);

# a valid table truncated after its two meta pages
routes_cli('compile', "$tmp/routes.json", "$tmp/$_") for qw(t1 t5 t6);
routes_cli('compile', "$tmp/routes2.json", "$tmp/t6.new");

my $trunc = "$tmp/truncated";
routes_cli('compile', "$tmp/routes.json", $trunc);
truncate "$trunc/data.mdb", 8192 or die "truncate: $!";

$ENV{TEST_NGINX_TMP} = $tmp;
$ENV{TEST_NGINX_CLI} = File::Spec->rel2abs($ENV{TEST_NGINX_EDGE_ORCH_CLI}
                                           || 'tools/edge-orch-routes');

repeat_each(1);
log_level('info');
workers(2);
master_on();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
upstream cms_table { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream cms_table2 { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream cms_default { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / { return 200 '"$host"'; }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms upstream=cms_default;
}
location = /sleep { echo_sleep 1.2; echo slept; }
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: a route naming an unknown upstream is ignored with a warning
--- http_config
edge_orch_routes $TEST_NGINX_TMP/t1;
edge_orch_region $http_x_region;
--- request
GET /p
--- more_headers
X-Region: XX
--- response_body chomp
{"cms":"cms_table"}
--- error_log
edge_orch: route "cms|XX|*|*" names unknown upstream "cms_typo", route ignored



=== TEST 2: no table at start: upstream= serves and the problem is logged
--- http_config
edge_orch_routes $TEST_NGINX_TMP/t2;
--- request
GET /p
--- response_body chomp
{"cms":"cms_default"}
--- error_log eval
[qr/\[warn\] .*edge_orch_routes ".*\/t2" has no table yet/,
 qr/\[error\] .*edge_orch: routing table problem: stat\(\) ".*\/t2\/data\.mdb" failed; fragments use their upstream= defaults \(2: No such file or directory\)/]
--- no_error_log
[alert]
[crit]



=== TEST 3: a table that appears after start is picked up without reload
--- init
EdgeOrch::wait_error_log(qr{t3/data\.mdb" failed}, 2);
EdgeOrch::routes_cli('compile', "$ENV{TEST_NGINX_TMP}/routes.json", "$ENV{TEST_NGINX_TMP}/t3");
select undef, undef, undef, 1.2;
--- http_config
edge_orch_routes $TEST_NGINX_TMP/t3;
--- request
GET /p
--- response_body chomp
{"cms":"cms_table"}
--- error_log eval
[qr/\[error\] .*edge_orch: routing table problem: stat\(\) ".*\/t3\/data\.mdb" failed; fragments use their upstream= defaults/,
 qr/\[notice\] .*edge_orch: routing table ".*\/t3" is readable again/]
--- no_error_log
[alert]
[crit]



=== TEST 4: garbage instead of a table: defaults, one clear error, no crash
--- http_config
edge_orch_routes $TEST_NGINX_TMP/garbage;
--- request
GET /p
--- response_body chomp
{"cms":"cms_default"}
--- error_log eval
qr/\[error\] .*edge_orch: routing table problem: mdb_env_open\(".*\/garbage"\) failed: MDB_INVALID/
--- no_error_log
[alert]
[crit]
signal



=== TEST 5: a truncated table is detected before LMDB reads it
--- http_config
edge_orch_routes $TEST_NGINX_TMP/truncated;
--- request
GET /p
--- response_body chomp
{"cms":"cms_default"}
--- error_log eval
qr/\[error\] .*edge_orch: routing table problem: ".*\/truncated\/data\.mdb" is truncated or not an LMDB file \(8192 bytes\)/
--- no_error_log
[alert]
[crit]
signal



=== TEST 6: a table deleted while running: the last-known-good table keeps serving
--- init
EdgeOrch::wait_error_log(qr{t5" generation 1 loaded}, 2);
system("rm", "-rf", "$ENV{TEST_NGINX_TMP}/t5") == 0 or die "rm failed";
select undef, undef, undef, 1.2;
--- http_config
edge_orch_routes $TEST_NGINX_TMP/t5;
--- request
GET /p
--- response_body chomp
{"cms":"cms_table"}
--- error_log eval
[qr/\[info\] .*edge_orch: routing table ".*\/t5" generation 1 loaded: 1 routes/,
 qr/\[error\] .*edge_orch: routing table problem: stat\(\) ".*\/t5\/data\.mdb" failed; serving the last-known-good table \(2: No such file or directory\)/]
--- no_error_log
[alert]
[crit]



=== TEST 7: a table replaced by renaming directories is picked up
--- init
my $t = $ENV{TEST_NGINX_TMP};
# both workers must have loaded the old table before it is replaced
EdgeOrch::wait_error_log(qr{t6" generation 1 loaded}, 2);
rename "$t/t6", "$t/t6.old" or die "rename: $!";
rename "$t/t6.new", "$t/t6" or die "rename: $!";
select undef, undef, undef, 1.2;
--- http_config
edge_orch_routes $TEST_NGINX_TMP/t6;
--- request
GET /p
--- response_body chomp
{"cms":"cms_table2"}
--- error_log eval
[qr/\[notice\] .*edge_orch: routing table ".*\/t6" was replaced, reopening/]
--- no_error_log
[alert]
[crit]
