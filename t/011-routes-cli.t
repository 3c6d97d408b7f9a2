# vi:filetype=perl
#
# tools/edge-orch-routes: the CLI that writes the LMDB routing table.
# Plain Test::More (no nginx): run with "prove -v t/011-routes-cli.t"
# after building the tool:
#
#   gcc -std=gnu99 -O2 -g -Wall -Wextra -Werror tools/edge-orch-routes.c \
#       -o tools/edge-orch-routes -llmdb -ljansson -lpcre2-8
#
# Another binary: EDGE_ORCH_ROUTES=/tmp/eor (or EDGE_ORCH_CLI, or
# TEST_NGINX_EDGE_ORCH_CLI as set by ./build.sh test).
# EDGE_ORCH_VALGRIND=1 runs every command under valgrind --leak-check=full
# --error-exitcode=9: any memory error or leak fails the exit status tests.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use JSON::PP ();
use POSIX ();
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/..');
my $bin = $ENV{EDGE_ORCH_ROUTES} || $ENV{EDGE_ORCH_CLI}
    || $ENV{TEST_NGINX_EDGE_ORCH_CLI} || "$root/tools/edge-orch-routes";
my @valgrind = $ENV{EDGE_ORCH_VALGRIND}
    ? qw(valgrind -q --leak-check=full --error-exitcode=9) : ();
my $example = "$root/examples/routes.json";

plan skip_all => "$bin is missing or not executable; build it with: gcc "
    . "-std=gnu99 -O2 -Wall -Wextra tools/edge-orch-routes.c -o "
    . "tools/edge-orch-routes -llmdb -ljansson -lpcre2-8"
    unless -x $bin;

plan skip_all => "$example is missing" unless -f $example;

my $tmp = tempdir('edge-orch-routes-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    my $s = <$fh>;
    return defined $s ? $s : '';
}

sub spew {
    my ($file, $s) = @_;
    open my $fh, '>:raw', $file or die "$file: $!";
    print $fh $s;
    close $fh or die "$file: $!";
    return $file;
}

# run(args...) or run({ stdin => FILE }, args...): returns
# (exit status, stdout, stderr); a signal counts as 128 + signal

sub run {
    my $opt = ref $_[0] eq 'HASH' ? shift : {};
    my @args = @_;
    my ($out, $err) = ("$tmp/.stdout", "$tmp/.stderr");

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', $opt->{stdin} || '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        if (@valgrind) {
            exec { $valgrind[0] } @valgrind, $bin, @args
                or POSIX::_exit(127);
        }

        exec { $bin } $bin, @args or POSIX::_exit(127);
    }

    waitpid $pid, 0;
    my $rc = ($? & 127) ? 128 + ($? & 127) : $? >> 8;

    return ($rc, slurp($out), slurp($err));
}

# a command expected to succeed; returns stdout

sub ok_run {
    my ($name, @args) = @_;
    my ($rc, $out, $err) = run(@args);
    is($rc, 0, "$name: exit 0") or diag("stderr: $err");
    return $out;
}

sub generation {
    my ($dir) = @_;
    my ($rc, $out) = run('info', $dir);
    return $out =~ /^generation: (\d+)$/m ? $1 : "none (exit $rc)";
}

sub dump_of {
    my ($dir) = @_;
    my ($rc, $out, $err) = run('dump', $dir);
    die "dump $dir: exit $rc: $err" if $rc != 0;
    return $out;
}

my $json = JSON::PP->new->canonical;
my $example_data = $json->decode(slurp($example));

my $dir = "$tmp/routes";
my ($rc, $out, $err);


# --- compile a fresh table ----------------------------------------------

{
    my $old = umask 077;
    ($rc, $out, $err) = run('compile', $example, $dir);
    umask $old;
}

is($rc, 0, 'compile example: exit 0') or diag($err);
is($out, "compiled 11 routes, 18 groups, 1 patterns, 2 device rules, "
    . "3 static rules: generation 0 -> 1\n", 'compile example: summary');
is($err, '', 'compile example: nothing on stderr');

is((stat $dir)[2] & 07777, 0755, 'DIR created with mode 0755');
is((stat "$dir/data.mdb")[2] & 07777, 0644, 'data.mdb mode 0644');
is((stat "$dir/lock.mdb")[2] & 07777, 0664, 'lock.mdb mode 0664');
is(generation($dir), 1, 'fresh table: generation 1');

($rc, $out, $err) = run('rollback', $dir);
is($rc, 1, 'rollback of a fresh table: exit 1');
is($err, "$dir: no previous table to roll back to\n",
   'rollback of a fresh table: message');
is(generation($dir), 1, 'failed rollback wrote nothing');


# --- dump -----------------------------------------------------------------

my $dump1 = dump_of($dir);

is_deeply($json->decode($dump1)->{groups}, $example_data->{groups},
          'dump: groups as in the example');
is_deeply([sort map { $json->encode($_) } @{ $json->decode($dump1)->{routes} }],
          [sort map { $json->encode($_) } @{ $example_data->{routes} }],
          'dump: the same routes as the example');
is_deeply($json->decode($dump1)->{region_patterns},
          $example_data->{region_patterns}, 'dump: region patterns');
is_deeply($json->decode($dump1)->{devices}, $example_data->{devices},
          'dump: device rules');

like($dump1, qr/\A\{\n  "schema": 1,\n  "default_group": "na",\n  "groups": \{\n    "AU": "apac",\n    "CA": "na",\n/,
     'dump: canonical key order, groups sorted, 2-space indent');
like($dump1, qr/\n  "routes": \[\n    \{\n      "service": "ads",\n      "region": "\*",\n      "upstream": "ads_virginia"\n    \},\n    \{\n      "service": "ads",\n      "region": "\*",\n      "device": "mobile",\n      "upstream": "ads_mobile"\n    \},/,
     'dump: routes sorted by key, "*" device/bucket omitted');
like($dump1, qr/\n\}\n\z/, 'dump: trailing newline');

# round trip: compile(dump) then dump is byte-identical

spew("$tmp/dump1.json", $dump1);
$out = ok_run('compile a dump', 'compile', "$tmp/dump1.json", $dir);
is($out, "compiled 11 routes, 18 groups, 1 patterns, 2 device rules, "
    . "3 static rules: generation 1 -> 2\n", 'compile a dump: generation +1');
is(dump_of($dir), $dump1, 'round trip: dump, compile, dump is identical');

# compile from stdin

($rc, $out, $err) = run({ stdin => "$tmp/dump1.json" }, 'compile', '-',
                        $dir);
is($rc, 0, 'compile from stdin: exit 0') or diag($err);
is(generation($dir), 3, 'compile from stdin: generation 3');
is(dump_of($dir), $dump1, 'compile from stdin: same table');


# --- info -----------------------------------------------------------------

$out = ok_run('info', 'info', $dir);
like($out, qr/\Atable: \Q$dir\E\nschema: 1\ngeneration: 3\nupdated_at: \d+ \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\nop: compile\ndefault_group: na\nroutes: 11\ngroups: 18\nregion_patterns: 1\ndevices: 2\nstatic: 3\nprevious_generation: 2\n\z/,
     'info: every field');


# --- get ------------------------------------------------------------------

is(ok_run('get', 'get', $dir, 'cms', 'apac'), "cms_tokyo\n",
   'get cms apac');
is(ok_run('get *', 'get', $dir, 'cms', '*'), "cms_virginia\n",
   'get cms *');
is(ok_run('get --device', 'get', $dir, 'ads', '*', '--device', 'mobile'),
   "ads_mobile\n", 'get ads * --device mobile');

($rc, $out, $err) = run('get', $dir, 'cms', 'JP');
is($rc, 1, 'get of an absent key: exit 1');
is($out, '', 'get of an absent key: nothing on stdout');
is($err, "$dir: no route cms|JP|*|*\n", 'get of an absent key: message');


# --- resolve --------------------------------------------------------------

my $iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) '
    . 'AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 '
    . 'Safari/604.1';
my $ipad = 'Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15';
my $desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 '
    . '(KHTML, like Gecko) Chrome/120.0 Safari/537.36';

is(ok_run('resolve cms JP', 'resolve', $dir, 'cms', 'JP'), <<'EOT',
region: JP
group: apac (groups["JP"])
device: none
bucket: none
try cms|JP|*|*: miss
try cms|apac|*|*: hit
upstream: cms_tokyo
EOT
   'resolve cms JP: exact region -> group apac -> cms_tokyo');

is(ok_run('resolve recs DE', 'resolve', $dir, 'recs', 'DE'), <<'EOT',
region: DE
group: eu (groups["DE"])
device: none
bucket: none
try recs|DE|*|*: miss
try recs|eu|*|*: hit
upstream: recs_dublin
EOT
   'resolve recs DE: recs_dublin');

is(ok_run('resolve cms US', 'resolve', $dir, 'cms', 'US'), <<'EOT',
region: US
group: na (groups["US"])
device: none
bucket: none
try cms|US|*|*: miss
try cms|na|*|*: miss
try cms|*|*|*: hit
upstream: cms_virginia
EOT
   'resolve cms US: no na route, falls to *');

is(ok_run('resolve ads TW', 'resolve', $dir, 'ads', 'TW'), <<'EOT',
region: TW
group: apac (region_patterns[0] "^(TW|HK|TH|VN|ID|PH|MY)$")
device: none
bucket: none
try ads|TW|*|*: miss
try ads|apac|*|*: hit
upstream: ads_singapore
EOT
   'resolve ads TW: group from the region pattern');

is(ok_run('resolve cms ZZ', 'resolve', $dir, 'cms', 'ZZ'), <<'EOT',
region: ZZ
group: na (default_group)
device: none
bucket: none
try cms|ZZ|*|*: miss
try cms|na|*|*: miss
try cms|*|*|*: hit
upstream: cms_virginia
EOT
   'resolve cms ZZ: unknown region gets default_group');

is(ok_run('resolve empty region', 'resolve', $dir, 'recs', ''), <<'EOT',
region: default (empty region)
group: na (default_group)
device: none
bucket: none
try recs|default|*|*: miss
try recs|na|*|*: miss
try recs|*|*|*: hit
upstream: recs_oregon
EOT
   'resolve with an empty region: region "default"');

is(ok_run('resolve mobile UA', 'resolve', $dir, 'ads', 'DE', '--ua',
          $iphone), <<'EOT',
region: DE
group: eu (groups["DE"])
device: mobile (devices[1] "(?i)iphone|ipod|android.+mobile|windows phone|mobi" matched the User-Agent)
bucket: none
try ads|DE|mobile|*: miss
try ads|DE|*|*: miss
try ads|eu|mobile|*: hit
upstream: ads_mobile
EOT
   'resolve with an iPhone User-Agent: ads_mobile');

is(ok_run('resolve mobile UA, US', '-q', 'resolve', $dir, 'ads', 'US',
          "--ua=$iphone"), "ads_mobile\n",
   'resolve --quiet, iPhone in US: ads_mobile via ads|*|mobile|*');
is(ok_run('resolve tablet UA', 'resolve', '--quiet', $dir, 'ads', 'DE',
          '--ua', $ipad), "ads_frankfurt\n",
   'resolve, iPad in DE: tablet has no route, ads_frankfurt');
like(ok_run('resolve tablet UA chain', 'resolve', $dir, 'ads', 'DE', '--ua',
            $ipad), qr/^device: tablet \(devices\[0\] /m,
     'resolve, iPad: device class tablet');
like(ok_run('resolve desktop UA', 'resolve', $dir, 'ads', 'JP', '--ua',
            $desktop),
     qr/^device: none \(no device pattern matched the User-Agent\)\n.*^upstream: ads_singapore$/ms,
     'resolve, desktop User-Agent: no device class');
is(ok_run('resolve --device', 'resolve', '-q', $dir, 'ads', 'JP',
          '--device', 'mobile', '--ua', $desktop), "ads_mobile\n",
   'resolve: --device wins over --ua');

($rc, $out, $err) = run('resolve', $dir, 'nope', 'JP');
is($rc, 1, 'resolve without a route: exit 1');
is($out, <<'EOT', 'resolve without a route: chain and "no route"');
region: JP
group: apac (groups["JP"])
device: none
bucket: none
try nope|JP|*|*: miss
try nope|apac|*|*: miss
try nope|*|*|*: miss
no route
EOT

($rc, $out, $err) = run('resolve', '-q', $dir, 'nope', 'JP');
is("$rc|$out|$err", "1||$dir: no route for service nope, region JP\n",
   'resolve --quiet without a route: message on stderr');


# --- put / del / put-group / del-group ------------------------------------

my $gen = generation($dir);

is(ok_run('put', 'put', $dir, 'cms', 'JP', 'cms_frankfurt'),
   'put route cms|JP|*|* -> cms_frankfurt (new): generation '
   . "$gen -> " . ($gen + 1) . "\n", 'put a new route');
is(generation($dir), $gen + 1, 'put: generation +1');
is(ok_run('get after put', 'get', $dir, 'cms', 'JP'), "cms_frankfurt\n",
   'get after put');
is(ok_run('resolve after put', 'resolve', '-q', $dir, 'cms', 'JP'),
   "cms_frankfurt\n", 'resolve after put: the exact region wins');

is(ok_run('put replace', 'put', $dir, 'cms', 'JP', 'cms_tokyo'),
   'put route cms|JP|*|* -> cms_tokyo (was cms_frankfurt): generation '
   . ($gen + 1) . ' -> ' . ($gen + 2) . "\n", 'put replaces a route');

is(ok_run('put bucket', 'put', $dir, 'recs', '*', 'recs_dublin', '--bucket',
          'b'), 'put route recs|*|*|b -> recs_dublin (new): generation '
   . ($gen + 2) . ' -> ' . ($gen + 3) . "\n", 'put a bucket route');
is(ok_run('resolve bucket', 'resolve', $dir, 'recs', 'JP', '--bucket', 'b'),
   <<'EOT', 'resolve --bucket: (*,B) before (*,*) per region');
region: JP
group: apac (groups["JP"])
device: none
bucket: b (given)
try recs|JP|*|b: miss
try recs|JP|*|*: miss
try recs|apac|*|b: miss
try recs|apac|*|*: miss
try recs|*|*|b: hit
upstream: recs_dublin
EOT
is(ok_run('resolve device+bucket', 'resolve', '-q', $dir, 'recs', 'US',
          '--bucket', 'b', '--device', 'mobile'), "recs_dublin\n",
   'resolve --device --bucket: falls back to (*,B)');

is(ok_run('del', 'del', $dir, 'recs', '*', '--bucket', 'b'),
   'deleted route recs|*|*|b (was recs_dublin): generation ' . ($gen + 3)
   . ' -> ' . ($gen + 4) . "\n", 'del a route');
is(ok_run('del 2', 'del', $dir, 'cms', 'JP'),
   'deleted route cms|JP|*|* (was cms_tokyo): generation ' . ($gen + 4)
   . ' -> ' . ($gen + 5) . "\n", 'del another route');
is(generation($dir), $gen + 5, 'five writes: generation +5');

($rc, $out, $err) = run('del', $dir, 'cms', 'JP');
is("$rc|$out|$err", "1||$dir: no route cms|JP|*|*\n",
   'del of an absent route: exit 1 and message');
is(generation($dir), $gen + 5, 'failed del wrote nothing');

is(ok_run('put-group', 'put-group', $dir, 'BR', 'latam'),
   'put group BR -> latam (new): generation ' . ($gen + 5) . ' -> '
   . ($gen + 6) . "\n", 'put-group');
like(ok_run('resolve after put-group', 'resolve', $dir, 'cms', 'BR'),
     qr/^group: latam \(groups\["BR"\]\)$/m, 'resolve sees the new group');
is(ok_run('put-group replace', 'put-group', $dir, 'BR', 'na'),
   'put group BR -> na (was latam): generation ' . ($gen + 6) . ' -> '
   . ($gen + 7) . "\n", 'put-group replaces');
is(ok_run('del-group', 'del-group', $dir, 'BR'),
   'deleted group BR (was na): generation ' . ($gen + 7) . ' -> '
   . ($gen + 8) . "\n", 'del-group');

($rc, $out, $err) = run('del-group', $dir, 'BR');
is("$rc|$out|$err", "1||$dir: no group for region BR\n",
   'del-group of an absent region: exit 1 and message');
is(generation($dir), $gen + 8, 'every write added exactly 1');
is(dump_of($dir), $dump1, 'after put/del pairs the table is as compiled');

like(ok_run('info after del-group', 'info', $dir),
     qr/^op: del-group$/m, 'info: op of the last write');


# --- diff -----------------------------------------------------------------

is(ok_run('diff unchanged', 'diff', $example, $dir), "no changes\n",
   'diff of the same table: no changes');

{
    my $d = $json->decode(slurp($example));

    $d->{default_group} = 'eu';
    $d->{groups}{BR} = 'latam';
    $d->{groups}{MX} = 'latam';
    delete $d->{groups}{NZ};
    $d->{region_patterns}[0]{pattern} = '^(TW|HK)$';
    push @{ $d->{region_patterns} }, { pattern => '^B', group => 'latam' };
    pop @{ $d->{devices} };
    push @{ $d->{routes} },
        { service => 'cms', region => 'latam', upstream => 'cms_virginia' };
    $_->{upstream} = 'recs_oregon'
        for grep { $_->{service} eq 'recs' && $_->{region} eq 'eu' }
            @{ $d->{routes} };
    @{ $d->{routes} } = grep { !($_->{service} eq 'ads'
                                 && $_->{region} eq 'eu'
                                 && !$_->{device}) } @{ $d->{routes} };

    spew("$tmp/changed.json", JSON::PP->new->pretty->encode($d));
}

$gen = generation($dir);
is(ok_run('diff changed', 'diff', "$tmp/changed.json", $dir), <<'EOT',
~ default_group na -> eu
+ group BR -> latam
~ group MX na -> latam
- group NZ -> apac
~ region_pattern[0] apac "^(TW|HK|TH|VN|ID|PH|MY)$" -> apac "^(TW|HK)$"
+ region_pattern[1] -> latam "^B"
- device[1] -> mobile "(?i)iphone|ipod|android.+mobile|windows phone|mobi"
- route ads|eu|*|* -> ads_frankfurt
+ route cms|latam|*|* -> cms_virginia
~ route recs|eu|*|* recs_dublin -> recs_oregon
EOT
   'diff: add, change and remove of every kind');
is(generation($dir), $gen, 'diff wrote nothing');
is(dump_of($dir), $dump1, 'diff left the table alone');

($rc, $out, $err) = run('diff', $example, "$tmp/no-such-dir");
is($rc, 0, 'diff against a missing DIR: exit 0');
my @plus = grep { /^\+ / } split /\n/, $out;
is(scalar @plus, 1 + 18 + 1 + 2 + 11 + 3,
   'diff against a missing DIR: everything is added');
like($out, qr/^\+ route cms\|apac\|\*\|\* -> cms_tokyo$/m,
     'diff against a missing DIR: route line format');
ok(!-e "$tmp/no-such-dir", 'diff did not create DIR');


# --- rollback -------------------------------------------------------------

my $before = dump_of($dir);
$out = ok_run('compile changed', 'compile', "$tmp/changed.json", $dir);
is($out, 'compiled 11 routes, 18 groups, 2 patterns, 1 device rules, '
   . "3 static rules: generation $gen -> " . ($gen + 1) . "\n",
   'compile a changed table');
my $after = dump_of($dir);
isnt($after, $before, 'the table changed');

is(ok_run('rollback', 'rollback', $dir),
   "rolled back to the table of generation $gen: generation " . ($gen + 1)
   . ' -> ' . ($gen + 2) . "\n", 'rollback: message');
is(dump_of($dir), $before, 'rollback restores the previous dump exactly');
is(ok_run('get after rollback', 'get', $dir, 'ads', 'eu'),
   "ads_frankfurt\n", 'rollback: a removed route is back');

is(ok_run('rollback 2', 'rollback', $dir),
   'rolled back to the table of generation ' . ($gen + 1) . ': generation '
   . ($gen + 2) . ' -> ' . ($gen + 3) . "\n", 'second rollback: message');
is(dump_of($dir), $after, 'a second rollback returns to the newer table');
like(ok_run('info after rollback', 'info', $dir),
     qr/^generation: @{[ $gen + 3 ]}\n.*^op: rollback\n.*^previous_generation: @{[ $gen + 2 ]}$/ms,
     'info after rollback');

ok_run('rollback 3', 'rollback', $dir);
is(dump_of($dir), $before, 'third rollback: back to the older table');
$gen = generation($dir);


# --- validation errors: exit 1, exact message, table untouched ------------

my $good = dump_of($dir);
my $bad = "$tmp/routes.json";

my $route_ok = '{"service":"cms","region":"*","upstream":"cms_virginia"}';
my $name65 = 'a' x 65;

my @invalid = (
    [ 'invalid JSON', qq({\n  "schema": 1,\n  "routes": [\n    {"service": "cms",}\n  ]\n}\n),
      qq($bad:4:23: string or '}' expected near '}') ],
    [ 'trailing garbage', qq({"schema": 1} x),
      qq($bad:1:15: end of file expected near 'x') ],
    [ 'empty file', '',
      qq($bad:1:0: unexpected token near end of file) ],
    [ 'top-level array', '[{"schema": 1}]',
      "$bad: top level must be an object, got an array" ],
    [ 'top-level string', '"routes"',
      qq($bad: top level must be an object, got "routes") ],
    [ 'schema missing', '{"routes": []}',
      qq($bad: missing "schema" (must be 1)) ],
    [ 'schema 2', '{"schema": 2}', qq($bad: "schema" must be 1, got 2) ],
    [ 'schema "1"', '{"schema": "1"}',
      qq($bad: "schema" must be 1, got "1") ],
    [ 'unknown top-level key', '{"schema": 1, "rotues": []}',
      qq($bad: unknown top-level key "rotues" (expected schema, default_group, groups, region_patterns, devices, routes, static)) ],
    [ 'unknown route key',
      qq({"schema": 1, "routes": [$route_ok, {"service": "cms", "region": "JP", "upstrem": "x"}]}),
      qq($bad: routes[1]: unknown key "upstrem" (expected "service", "region", "device", "bucket", "upstream")) ],
    [ 'missing upstream',
      '{"schema": 1, "routes": [{"service": "cms", "region": "JP"}]}',
      qq($bad: routes[0]: missing "upstream") ],
    [ 'upstream not a string',
      qq({"schema": 1, "routes": [$route_ok, $route_ok, $route_ok, {"service": "cms", "region": "JP", "upstream": 42}]}),
      qq($bad: routes[3]: "upstream" must be a string of [A-Za-z0-9_.:-], got 42) ],
    [ 'bad name chars',
      '{"schema": 1, "routes": [{"service": "cms site", "region": "JP", "upstream": "x"}]}',
      qq($bad: routes[0]: "service" must be a string of [A-Za-z0-9_.:-], got "cms site" (bad byte 0x20 at offset 3)) ],
    [ 'pipe in a region',
      '{"schema": 1, "routes": [{"service": "cms", "region": "JP|x", "upstream": "x"}]}',
      qq($bad: routes[0]: "region" must be a string of [A-Za-z0-9_.:-] or "*", got "JP|x" (bad byte 0x7c at offset 2)) ],
    [ '65-byte name',
      qq({"schema": 1, "routes": [{"service": "cms", "region": "*", "upstream": "$name65"}]}),
      qq($bad: routes[0]: "upstream" must be 1..64 bytes of [A-Za-z0-9_.:-], got 65 bytes: "$name65") ],
    [ 'empty name',
      '{"schema": 1, "routes": [{"service": "cms", "region": "", "upstream": "x"}]}',
      qq($bad: routes[0]: "region" must be 1..64 bytes of [A-Za-z0-9_.:-] or "*", got "") ],
    [ 'NUL byte in a name',
      '{"schema": 1, "routes": [{"service": "cms\u0000", "region": "*", "upstream": "x"}]}',
      qq($bad: routes[0]: "service" must be a string of [A-Za-z0-9_.:-], got "cms\\x00" (bad byte 0x00 at offset 3)) ],
    [ '"*" service',
      '{"schema": 1, "routes": [{"service": "*", "region": "*", "upstream": "x"}]}',
      qq($bad: routes[0]: "service" must be a string of [A-Za-z0-9_.:-], got "*" ("*" is not allowed here)) ],
    [ 'duplicate route',
      qq({"schema": 1, "routes": [$route_ok, {"service": "ads", "region": "*", "upstream": "x"}, {"service": "cms", "region": "*", "device": "*", "upstream": "y"}]}),
      "$bad: routes[2]: duplicate route cms|*|*|* (same key as routes[0])" ],
    [ 'duplicate group',
      qq({"schema": 1, "groups": {"JP": "apac",\n "JP": "eu"}}),
      qq($bad:2:5: duplicate object key near '"JP"') ],
    [ 'bad group key',
      '{"schema": 1, "groups": {"J P": "apac"}}',
      qq($bad: groups: key must be a string of [A-Za-z0-9_.:-], got "J P" (bad byte 0x20 at offset 1)) ],
    [ 'group value not a string',
      '{"schema": 1, "groups": {"JP": ["apac"]}}',
      qq($bad: groups["JP"] must be a string of [A-Za-z0-9_.:-], got an array) ],
    [ 'groups not an object', '{"schema": 1, "groups": []}',
      qq($bad: "groups" must be an object, got an array) ],
    [ 'routes not an array', '{"schema": 1, "routes": {}}',
      qq($bad: "routes" must be an array, got an object) ],
    [ 'route not an object', '{"schema": 1, "routes": [null]}',
      "$bad: routes[0]: must be an object, got null" ],
    [ 'bad regex',
      '{"schema": 1, "region_patterns": [{"pattern": "^(KR|TW", "group": "apac"}]}',
      qq($bad: region_patterns[0]: "pattern" does not compile at offset 7: missing closing parenthesis) ],
    [ 'bad device regex',
      '{"schema": 1, "devices": [{"pattern": "(?i)iphone", "class": "m"}, {"pattern": "a{2,1}", "class": "x"}]}',
      qq($bad: devices[1]: "pattern" does not compile at offset 5: numbers out of order in {} quantifier) ],
    [ 'empty pattern',
      '{"schema": 1, "devices": [{"pattern": "", "class": "m"}]}',
      qq($bad: devices[0]: "pattern" must be 1..1024 bytes, got 0 bytes) ],
    [ 'long pattern',
      '{"schema": 1, "devices": [{"pattern": "' . ('x' x 1025) . '", "class": "m"}]}',
      qq($bad: devices[0]: "pattern" must be 1..1024 bytes, got 1025 bytes) ],
    [ 'NUL in a pattern',
      '{"schema": 1, "devices": [{"pattern": "a\u0000b", "class": "m"}]}',
      qq($bad: devices[0]: "pattern" must not contain NUL bytes, got one at offset 1) ],
    [ 'device rule with "group"',
      '{"schema": 1, "devices": [{"pattern": "x", "group": "m"}]}',
      qq($bad: devices[0]: unknown key "group" (expected "pattern", "class")) ],
    [ 'default_group "*"', '{"schema": 1, "default_group": "*"}',
      qq($bad: "default_group" must be a string of [A-Za-z0-9_.:-], got "*" ("*" is not allowed here)) ],
    [ 'deeply nested JSON', '[' x 100000 . ']' x 100000,
      "$bad:1:2049: maximum parsing depth reached near '['" ],
    [ 'very long string',
      '{"schema": 1, "routes": [{"service": "' . ('s' x 1000000) . '", "region": "*", "upstream": "x"}]}',
      qq($bad: routes[0]: "service" must be 1..64 bytes of [A-Za-z0-9_.:-], got 1000000 bytes: ")
      . ('s' x 74) . '..."' ],
    [ 'too many region patterns',
      '{"schema": 1, "region_patterns": ['
      . join(',', ('{"pattern": "x", "group": "g"}') x 1001) . ']}',
      qq($bad: "region_patterns" has 1001 entries, at most 1000 are allowed) ],

    # static routes

    [ 'static not an array', '{"schema": 1, "static": {}}',
      qq($bad: "static" must be an array, got an object) ],
    [ 'static rule not an object', '{"schema": 1, "static": ["/about"]}',
      qq($bad: static[0]: must be an object, got "/about") ],
    [ 'static rule with an unknown key',
      '{"schema": 1, "static": [{"exact": "/a"}, {"regex": "^/x"}]}',
      qq($bad: static[1]: unknown key "regex" (expected "exact", "prefix", "pattern")) ],
    [ 'static rule without a kind', '{"schema": 1, "static": [{}]}',
      qq($bad: static[0]: missing "exact", "prefix" or "pattern") ],
    [ 'static rule with two kinds',
      '{"schema": 1, "static": [{"exact": "/a"}, {"prefix": "/b", "exact": "/b"}]}',
      qq($bad: static[1]: both "exact" and "prefix" given (expected exactly one of "exact", "prefix", "pattern")) ],
    [ 'static rule with three kinds',
      '{"schema": 1, "static": [{"pattern": "^/c", "prefix": "/c", "exact": "/c"}]}',
      qq($bad: static[0]: both "exact" and "prefix" given (expected exactly one of "exact", "prefix", "pattern")) ],
    [ 'static prefix and pattern',
      '{"schema": 1, "static": [{"pattern": "^/c", "prefix": "/c"}]}',
      qq($bad: static[0]: both "prefix" and "pattern" given (expected exactly one of "exact", "prefix", "pattern")) ],
    [ 'static exact not a string', '{"schema": 1, "static": [{"exact": 42}]}',
      qq($bad: static[0]: "exact" must be a string, got 42) ],
    [ 'static pattern null', '{"schema": 1, "static": [{"pattern": null}]}',
      qq($bad: static[0]: "pattern" must be a string, got null) ],
    [ 'static prefix an array', '{"schema": 1, "static": [{"prefix": ["/a"]}]}',
      qq($bad: static[0]: "prefix" must be a string, got an array) ],
    [ 'empty static exact', '{"schema": 1, "static": [{"exact": ""}]}',
      qq($bad: static[0]: "exact" must be 1..1024 bytes, got 0 bytes) ],
    [ 'empty static prefix', '{"schema": 1, "static": [{"prefix": ""}]}',
      qq($bad: static[0]: "prefix" must be 1..1024 bytes, got 0 bytes) ],
    [ 'empty static pattern', '{"schema": 1, "static": [{"pattern": ""}]}',
      qq($bad: static[0]: "pattern" must be 1..1024 bytes, got 0 bytes) ],
    [ 'static path without "/"', '{"schema": 1, "static": [{"prefix": "assets/"}]}',
      qq($bad: static[0]: "prefix" must start with "/", got "assets/") ],
    [ 'static exact without "/"', '{"schema": 1, "static": [{"exact": "about"}]}',
      qq($bad: static[0]: "exact" must start with "/", got "about") ],
    [ 'space in a static path', '{"schema": 1, "static": [{"exact": "/a b"}]}',
      qq($bad: static[0]: "exact" must be visible ASCII (0x21-0x7e), got "/a b" (bad byte 0x20 at offset 2)) ],
    [ 'UTF-8 in a static path', '{"schema": 1, "static": [{"prefix": "/caf\u00e9"}]}',
      qq($bad: static[0]: "prefix" must be visible ASCII (0x21-0x7e), got "/caf\\xc3\\xa9" (bad byte 0xc3 at offset 4)) ],
    [ 'NUL in a static path', '{"schema": 1, "static": [{"exact": "/a\u0000"}]}',
      qq($bad: static[0]: "exact" must be visible ASCII (0x21-0x7e), got "/a\\x00" (bad byte 0x00 at offset 2)) ],
    [ 'DEL in a static path', '{"schema": 1, "static": [{"exact": "/a\u007f"}]}',
      qq($bad: static[0]: "exact" must be visible ASCII (0x21-0x7e), got "/a\\x7f" (bad byte 0x7f at offset 2)) ],
    [ 'tab before a static path', '{"schema": 1, "static": [{"exact": "\t/a"}]}',
      qq($bad: static[0]: "exact" must be visible ASCII (0x21-0x7e), got "\\x09/a" (bad byte 0x09 at offset 0)) ],
    [ 'long static path',
      '{"schema": 1, "static": [{"prefix": "/' . ('p' x 1024) . '"}]}',
      qq($bad: static[0]: "prefix" must be 1..1024 bytes, got 1025 bytes) ],
    [ 'long static pattern',
      '{"schema": 1, "static": [{"pattern": "/' . ('p' x 1024) . '"}]}',
      qq($bad: static[0]: "pattern" must be 1..1024 bytes, got 1025 bytes) ],
    [ 'bad static regex',
      '{"schema": 1, "static": [{"exact": "/a"}, {"pattern": "^/blog/(["}]}',
      qq($bad: static[1]: "pattern" does not compile at offset 9: missing terminating ] for character class) ],
    [ 'NUL in a static pattern', '{"schema": 1, "static": [{"pattern": "a\u0000b"}]}',
      qq($bad: static[0]: "pattern" must not contain NUL bytes, got one at offset 1) ],
    [ 'duplicate static exact',
      '{"schema": 1, "static": [{"exact": "/a"}, {"prefix": "/a"}, {"exact": "/a"}]}',
      qq($bad: static[2]: duplicate static rule exact "/a" (same as static[0])) ],
    [ 'duplicate static prefix',
      '{"schema": 1, "static": [{"prefix": "/a/"}, {"prefix": "/b/"}, {"prefix": "/b/"}, {"prefix": "/a/"}]}',
      qq($bad: static[2]: duplicate static rule prefix "/b/" (same as static[1])) ],
    [ 'duplicate static pattern',
      '{"schema": 1, "static": [{"pattern": "^/x$"}, {"pattern": "^/y$"}, {"pattern": "^/x$"}]}',
      qq($bad: static[2]: duplicate static rule pattern "^/x\$" (same as static[0])) ],
    [ 'duplicate key in a static rule',
      qq({"schema": 1, "static": [\n  {"exact": "/a", "exact": "/b"}]}),
      qq($bad:2:25: duplicate object key near '"exact"') ],
    [ 'too many static rules',
      '{"schema": 1, "static": ['
      . join(',', map { qq({"exact": "/p$_"}) } 0 .. 1000) . ']}',
      qq($bad: "static" has 1001 entries, at most 1000 are allowed) ],
);

for my $case (@invalid) {
    my ($name, $text, $msg) = @$case;

    spew($bad, $text);
    ($rc, $out, $err) = run('compile', $bad, $dir);

    is($rc, 1, "$name: exit 1");
    is($err, "$msg\n", "$name: message");
    is($out, '', "$name: nothing on stdout");

    ($rc, $out, $err) = run('diff', $bad, $dir);
    is("$rc|$err", "1|$msg\n", "$name: diff fails the same way");
}

is(dump_of($dir), $good, 'after every invalid compile the table is intact');
is(generation($dir), $gen, 'no invalid compile changed the generation');

($rc, $out, $err) = run('compile', "$tmp/missing.json", $dir);
is("$rc|$err", "1|$tmp/missing.json: cannot open: No such file or directory\n",
   'compile of a missing file');

# 100001 routes is over the limit

{
    my $many = '{"schema": 1, "routes": ['
        . join(',', map { qq({"service":"s$_","region":"*","upstream":"u"}) }
                    0 .. 100000)
        . ']}';
    spew($bad, $many);
    ($rc, $out, $err) = run('compile', $bad, $dir);
    is("$rc|$err",
       qq(1|$bad: "routes" has 100001 entries, at most 100000 are allowed\n),
       'too many routes');
}

is(dump_of($dir), $good, 'still intact');


# --- missing, empty, foreign and corrupt DIRs ----------------------------

for my $cmd (['dump'], ['info'], ['get', 'cms', 'JP'],
             ['resolve', 'cms', 'JP'], ['rollback'], ['del', 'cms', 'JP'],
             ['del-group', 'JP'])
{
    my ($c, @rest) = @$cmd;
    ($rc, $out, $err) = run($c, "$tmp/nope", @rest);
    is("$rc|$out|$err",
       "1||$tmp/nope: no routing table here: No such file or directory\n",
       "$c on a missing DIR: exit 1 and message");
}

ok(!-e "$tmp/nope", 'no command created the missing DIR');

mkdir "$tmp/empty" or die;
($rc, $out, $err) = run('dump', "$tmp/empty");
is("$rc|$err", "1|$tmp/empty: not a routing table ($tmp/empty/data.mdb: "
   . "No such file or directory)\n", 'dump of an empty directory');
ok(!-e "$tmp/empty/lock.mdb", 'no stray lock.mdb left in it');

mkdir "$tmp/garbage" or die;
spew("$tmp/garbage/data.mdb", "not an LMDB file\n" x 1000);
($rc, $out, $err) = run('dump', "$tmp/garbage");
is("$rc|$err", "1|$tmp/garbage: cannot open the LMDB environment: "
   . "MDB_INVALID: File is not an LMDB file\n", 'dump of a corrupt data.mdb');
($rc, $out, $err) = run('compile', $example, "$tmp/garbage");
is($rc, 1, 'compile refuses to overwrite a corrupt data.mdb');
is(slurp("$tmp/garbage/data.mdb"), "not an LMDB file\n" x 1000,
   'the corrupt file is untouched');

($rc, $out, $err) = run('dump', $example);
is("$rc|$err", "1|$example: not a directory\n", 'dump of a regular file');

SKIP: {
    skip 'mdb_load (lmdb-utils) is not installed', 3
        unless grep { -x "$_/mdb_load" } split /:/, $ENV{PATH};

    my $foreign = "$tmp/foreign";
    spew("$tmp/foreign.txt", "VERSION=3\nformat=print\ntype=btree\n"
         . "HEADER=END\n hello\n world\nDATA=END\n");
    mkdir $foreign or die;
    system("mdb_load -f $tmp/foreign.txt $foreign") == 0
        or skip 'mdb_load failed', 3;

    ($rc, $out, $err) = run('compile', $example, $foreign);
    is("$rc|$err", "1|$foreign: this LMDB environment is not a routing "
       . qq(table (no "meta" database); refusing to write to it\n),
       'compile refuses a foreign LMDB environment');
    ($rc, $out, $err) = run('dump', $foreign);
    is("$rc|$err",
       qq(1|$foreign: not a routing table (no "meta" database)\n),
       'dump of a foreign LMDB environment');
    ($rc, $out, $err) = run('put', $foreign, 'cms', '*', 'x');
    is($rc, 1, 'put refuses a foreign LMDB environment');
}

SKIP: {
    skip 'mdb_load (lmdb-utils) is not installed', 10
        unless grep { -x "$_/mdb_load" } split /:/, $ENV{PATH};

    # a table whose content was damaged by another writer

    my $c = "$tmp/corrupt";
    ok_run('compile for corruption', 'compile', $example, $c);
    spew("$tmp/corrupt.txt", "VERSION=3\nformat=print\ntype=btree\n"
         . "HEADER=END\n cms|JP|x\n cms_tokyo\nDATA=END\n");
    system("mdb_load -s routes $c < $tmp/corrupt.txt") == 0
        or skip 'mdb_load failed', 9;

    my $msg = qq($c: corrupt table: routes key "cms|JP|x": has 3 fields, )
        . "expected 4\n";

    ($rc, $out, $err) = run('dump', $c);
    is("$rc|$err", "1|$msg", 'dump of a table with a corrupt key');
    ($rc, $out, $err) = run('resolve', $c, 'cms', 'JP');
    is("$rc|$err", "1|$msg", 'resolve of a table with a corrupt key');
    ($rc, $out, $err) = run('put', $c, 'cms', 'JP', 'cms_tokyo');
    is("$rc|$err", "1|$msg", 'put refuses to edit a corrupt table');
    is(generation($c), 1, 'the failed put wrote nothing');

    ($rc, $out, $err) = run('compile', $example, $c);
    is($rc, 0, 'compile repairs a corrupt table');
    is($err, "$msg$c: warning: replacing an unreadable table; it is not "
       . "saved as the previous table\n", 'compile over it warns');
    is(dump_of($c), $dump1, 'the repaired table is the compiled one');
    ($rc, $out, $err) = run('rollback', $c);
    is("$rc|$err", "1|$c: no previous table to roll back to\n",
       'the unreadable table was not saved as previous');
    is(generation($c), 2, 'repair: generation 2');
}


# --- static routes: paths that skip orchestration --------------------------

# the raw content of one named database: [ key, value, key, value, ... ],
# or undef if mdb_dump fails (no such database)

my $have_lmdb_utils = 2 == grep { my $t = $_; grep { -x "$_/$t" } split /:/,
                                  $ENV{PATH} } qw(mdb_dump mdb_load);

sub mdb_db {
    my ($env, $db) = @_;
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec 'mdb_dump', '-s', $db, $env or POSIX::_exit(127);
    }

    my $text = do { local $/; <$fh> };
    close $fh;
    return undef if $? != 0;

    my ($data) = $text =~ /^HEADER=END\n(.*?)^DATA=END$/ms or return undef;
    return [ map { pack 'H*', substr($_, 1) } split /\n/, $data ];
}

# every database of an environment, as mdb_dump -a names them

sub mdb_names {
    my ($env) = @_;
    my $text = `mdb_dump -a '$env' 2>/dev/null`;
    return join ' ', $text =~ /^database=(\S+)$/mg;
}

my $st = "$tmp/static";
my $st_json = spew("$tmp/static.json", <<'EOT');
{
  "schema": 1,
  "routes": [ { "service": "cms", "region": "*", "upstream": "cms_virginia" } ],
  "static": [
    { "exact": "/about" },
    { "prefix": "/_next/" },
    { "pattern": "^/blog/[0-9]+/amp$" },
    { "prefix": "/_next/static/" },
    { "exact": "/_next/static/chunks/live.js" },
    { "pattern": "(?i)\\.(css|js)$" },
    { "pattern": "^/blog/" },
    { "prefix": "/About" }
  ]
}
EOT
my $no_static = spew("$tmp/no-static.json", '{"schema": 1, "routes": [{"service": '
                     . '"cms", "region": "*", "upstream": "cms_virginia"}]}');

my $st_dump = <<'EOT';
{
  "schema": 1,
  "groups": {},
  "region_patterns": [],
  "devices": [],
  "routes": [
    {
      "service": "cms",
      "region": "*",
      "upstream": "cms_virginia"
    }
  ],
  "static": [
    {
      "exact": "/about"
    },
    {
      "prefix": "/_next/"
    },
    {
      "pattern": "^/blog/[0-9]+/amp$"
    },
    {
      "prefix": "/_next/static/"
    },
    {
      "exact": "/_next/static/chunks/live.js"
    },
    {
      "pattern": "(?i)\\.(css|js)$"
    },
    {
      "prefix": "/About"
    }
  ]
}
EOT
# the list above leaves out one rule of static.json: insert it in place
$st_dump =~ s/(\n    \{\n      "prefix": "\/About"\n)/\n    {\n      "pattern": "^\/blog\/"\n    },$1/
    or die 'static dump template';

is(ok_run('compile static', 'compile', $st_json, $st),
   "compiled 1 routes, 0 groups, 0 patterns, 0 device rules, 8 static "
   . "rules: generation 0 -> 1\n", 'compile with static rules: summary');
is(dump_of($st), $st_dump,
   'dump: "static" after "routes", in table order, one key per rule');

spew("$tmp/static-dump.json", $st_dump);
is(ok_run('compile a static dump', 'compile', "$tmp/static-dump.json", $st),
   "compiled 1 routes, 0 groups, 0 patterns, 0 device rules, 8 static "
   . "rules: generation 1 -> 2\n", 'compile a dump with static rules');
is(dump_of($st), $st_dump, 'static round trip: dump, compile, dump is identical');

like(ok_run('info static', 'info', $st),
     qr/^devices: 0\nstatic: 8\nprevious_generation: 1\n\z/m,
     'info counts static rules');

is(ok_run('diff static unchanged', 'diff', $st_json, $st), "no changes\n",
   'diff of the same static rules: no changes');

SKIP: {
    skip 'mdb_dump (lmdb-utils) is not installed', 2 unless $have_lmdb_utils;

    # the contract with the module: "static", keys 0000.., "KIND\nVALUE"

    is_deeply(mdb_db($st, 'static'),
              [ '0000', "exact\n/about",
                '0001', "prefix\n/_next/",
                '0002', "pattern\n^/blog/[0-9]+/amp\$",
                '0003', "prefix\n/_next/static/",
                '0004', "exact\n/_next/static/chunks/live.js",
                '0005', "pattern\n(?i)\\.(css|js)\$",
                '0006', "pattern\n^/blog/",
                '0007', "prefix\n/About" ],
              'LMDB "static": 4-digit keys in order, values KIND\\nVALUE');
    is(mdb_names($st),
       'devices groups meta previous region_patterns routes static',
       'the environment has seven named databases');
}


# bypass DIR PATH: exact, else the longest prefix, else the first pattern

for my $case (
    [ '/about', 0, "static: exact /about (static[0])\n", 'exact' ],
    [ '/_next/static/chunks/live.js', 0,
      "static: exact /_next/static/chunks/live.js (static[4])\n",
      'exact beats a matching prefix and pattern listed before it' ],
    [ '/_next/static/css/a.css', 0,
      "static: prefix /_next/static/ (static[3])\n",
      'the longest prefix wins, not the first one listed' ],
    [ '/_next/data.json', 0, "static: prefix /_next/ (static[1])\n",
      'a shorter prefix when the longer one does not match' ],
    [ '/_next/', 0, "static: prefix /_next/ (static[1])\n",
      'a prefix matches a path equal to it' ],
    [ '/_next/x.js', 0, "static: prefix /_next/ (static[1])\n",
      'a prefix beats a pattern' ],
    [ '/blog/42/amp', 0,
      qq(static: pattern "^/blog/[0-9]+/amp\$" (static[2])\n),
      'the first matching pattern in table order' ],
    [ '/blog/42', 0, qq(static: pattern "^/blog/" (static[6])\n),
      'a later pattern when the first does not match' ],
    [ '/theme/site.CSS', 0,
      'static: pattern "(?i)\\\\.(css|js)$" (static[5])' . "\n",
      'patterns are unanchored unless anchored; (?i) is caseless' ],
    [ '/About/team', 0, "static: prefix /About (static[7])\n",
      'a prefix needs no trailing slash' ],
    [ '/ABOUT', 1, "not static\n", 'exact matching is case-sensitive' ],
    [ '/about/', 1, "not static\n", 'exact means exact: no trailing slash' ],
    [ '/about?lang=en', 1, "not static\n",
      'PATH is taken as given: a query string is part of it' ],
    [ '/_next', 1, "not static\n", 'a path shorter than the prefix' ],
    [ '/', 1, "not static\n", 'not static' ],
)
{
    my ($path, $want_rc, $want, $name) = @$case;
    ($rc, $out, $err) = run('bypass', $st, $path);
    is("$rc|$out|$err", "$want_rc|$want|", "bypass $path: $name");
}

{
    my $all = "$tmp/static-all";
    spew("$tmp/static-all.json", '{"schema": 1, "static": [{"pattern": "^/x"}, '
         . '{"prefix": "/"}, {"exact": "/"}]}');
    ok_run('compile catch-all', 'compile', "$tmp/static-all.json", $all);
    is(ok_run('bypass / catch-all', 'bypass', $all, '/'),
       "static: exact / (static[2])\n", 'bypass: exact "/"');
    is(ok_run('bypass /x catch-all', 'bypass', $all, '/xyz'),
       "static: prefix / (static[1])\n",
       'bypass: prefix "/" takes every path before any pattern');
}

($rc, $out, $err) = run('bypass', $dir, '/articles/123/amp');
is("$rc|$out|$err",
   qq(0|static: pattern "^/articles/[0-9]+/amp\$" (static[2])\n|),
   'bypass: the static rules of examples/routes.json');
($rc, $out, $err) = run('bypass', "$tmp/nope", '/about');
is("$rc|$out|$err",
   "1||$tmp/nope: no routing table here: No such file or directory\n",
   'bypass on a missing DIR');


# diff: static rules are compared by position, like patterns

{
    my $d = $json->decode(slurp($st_json));
    $d->{static}[0] = { exact => '/about-us' };
    $d->{static}[1] = { exact => '/_next/' };
    pop @{ $d->{static} };
    spew("$tmp/static-changed.json", $json->encode($d));

    push @{ $d->{static} }, { prefix => '/About' }, { prefix => '/fonts/' },
        { pattern => '^/a "b"$' };
    spew("$tmp/static-more.json", $json->encode($d));
}

is(ok_run('diff static changed', 'diff', "$tmp/static-changed.json", $st),
   <<'EOT', 'diff: a static rule changes value, one changes kind, one goes');
~ static[0] exact /about -> exact /about-us
~ static[1] prefix /_next/ -> exact /_next/
- static[7] prefix /About
EOT
is(ok_run('diff static added', 'diff', "$tmp/static-more.json", $st),
   <<'EOT', 'diff: static rules added at the end');
~ static[0] exact /about -> exact /about-us
~ static[1] prefix /_next/ -> exact /_next/
+ static[8] prefix /fonts/
+ static[9] pattern "^/a \"b\"$"
EOT
is(ok_run('diff static removed', 'diff', $no_static, $st), <<'EOT',
- static[0] exact /about
- static[1] prefix /_next/
- static[2] pattern "^/blog/[0-9]+/amp$"
- static[3] prefix /_next/static/
- static[4] exact /_next/static/chunks/live.js
- static[5] pattern "(?i)\\.(css|js)$"
- static[6] pattern "^/blog/"
- static[7] prefix /About
EOT
   'diff: every static rule removed');
is(generation($st), 2, 'diff wrote nothing');


# rollback, put and "previous" keep static rules

is(ok_run('compile without static', 'compile', $no_static, $st),
   "compiled 1 routes, 0 groups, 0 patterns, 0 device rules, 0 static "
   . "rules: generation 2 -> 3\n", 'compile without static rules');
unlike(dump_of($st), qr/"static"/, 'dump: no "static" key when there are none');
($rc, $out, $err) = run('bypass', $st, '/about');
is("$rc|$out|$err", "1|not static\n|", 'bypass after the static rules went');
like(ok_run('info no static', 'info', $st), qr/^static: 0$/m,
     'info: static: 0');

SKIP: {
    skip 'mdb_dump (lmdb-utils) is not installed', 2 unless $have_lmdb_utils;

    is_deeply(mdb_db($st, 'static'), [], 'LMDB "static" is empty');
    is_deeply(mdb_db($st, 'previous'), [ 'generation', '2', 'table', $st_dump ],
              '"previous" holds the dump with the static rules');
}

is(ok_run('rollback static', 'rollback', $st),
   "rolled back to the table of generation 2: generation 3 -> 4\n",
   'rollback to the table with static rules');
is(dump_of($st), $st_dump, 'rollback restores the static rules exactly');
is(ok_run('bypass after rollback', 'bypass', $st, '/_next/static/a.js'),
   "static: prefix /_next/static/ (static[3])\n", 'bypass after rollback');

ok_run('put with static', 'put', $st, 'recs', '*', 'recs_oregon');
like(dump_of($st), qr/\Q"upstream": "recs_oregon"\E.*\Q"exact": "\/about"\E/s,
     'put keeps the static rules');
ok_run('rollback put', 'rollback', $st);
is(dump_of($st), $st_dump, 'rollback of a put: the static rules are kept');

ok_run('rollback to no static', 'rollback', $st);
ok_run('rollback back to static', 'rollback', $st);
is(dump_of($st), $st_dump, 'rollback twice: the same static rules again');

{
    my $many = '{"schema": 1, "static": ['
        . join(',', map { qq({"prefix": "/p$_/"}) } 0 .. 999)
        . ', ' . '{"exact": "/' . ('e' x 1023) . '"}]}';
    spew("$tmp/static-1001.json", $many);
    $many =~ s/\{"prefix": "\/p999\/"\}, //;
    spew("$tmp/static-1000.json", $many);

    is(ok_run('1000 static rules', 'compile', "$tmp/static-1000.json",
              "$tmp/static-1000"),
       "compiled 0 routes, 0 groups, 0 patterns, 0 device rules, 1000 "
       . "static rules: generation 0 -> 1\n",
       '1000 static rules and a 1024-byte path are allowed');
    is(ok_run('bypass 1000', 'bypass', "$tmp/static-1000", '/p998/x'),
       "static: prefix /p998/ (static[998])\n", 'bypass among 1000 rules');
    is(ok_run('bypass 1024', 'bypass', "$tmp/static-1000",
              '/' . ('e' x 1023)),
       "static: exact /" . ('e' x 1023) . " (static[999])\n",
       'bypass: a 1024-byte exact path');

    ($rc, $out, $err) = run('compile', "$tmp/static-1001.json",
                            "$tmp/static-1000");
    is("$rc|$out|$err", "1||$tmp/static-1001.json: \"static\" has 1001 "
       . "entries, at most 1000 are allowed\n", '1001 static rules');
    is(generation("$tmp/static-1000"), 1, 'the refused compile wrote nothing');
}


# a table written before static routes existed: no "static" database

SKIP: {
    skip 'mdb_dump/mdb_load (lmdb-utils) are not installed', 26
        unless $have_lmdb_utils;

    # what the older CLI wrote: every database but "static"; its dumps had
    # no "static" key, so everything else is byte for byte the same

    my $src = "$tmp/old-src";
    ok_run('old: compile 1', 'compile', $example, $src);
    ok_run('old: compile 2', 'compile', $no_static, $src);

    my $text = `mdb_dump -a '$src'`;
    my @blocks = grep { !/^database=static$/m } split /(?<=^DATA=END\n)/m,
                                                      $text;
    is(scalar @blocks, 6, 'old: six databases to load');
    spew("$tmp/old.txt", join '', @blocks);

    my @old = map { "$tmp/old$_" } 1 .. 3;

    for my $o (@old) {
        mkdir $o or die "$o: $!";
        system("mdb_load -f '$tmp/old.txt' '$o' 2>/dev/null") == 0
            or skip 'mdb_load failed', 23;
    }

    is(mdb_names($old[0]), 'devices groups meta previous region_patterns routes',
       'old: the environment has no "static" database');
    is(dump_of($old[0]), dump_of($src), 'old: dump works, same bytes');
    ($rc, $out, $err) = run('bypass', $old[0], '/about');
    is("$rc|$out|$err", "1|not static\n|", 'old: bypass says not static');
    like(ok_run('old: info', 'info', $old[0]),
         qr/^devices: 0\nstatic: 0\nprevious_generation: 1\n\z/m,
         'old: info counts 0 static rules');
    is(ok_run('old: resolve', 'resolve', '-q', $old[0], 'cms', 'JP'),
       "cms_virginia\n", 'old: resolve works');
    $out = ok_run('old: diff', 'diff', $example, $old[0]);
    is(join('', grep { /^. static/ } split /^/, $out), <<'EOT',
+ static[0] exact /about
+ static[1] prefix /assets/
+ static[2] pattern "^/articles/[0-9]+/amp$"
EOT
       'old: diff against the example adds its static rules');
    is(mdb_names($old[0]),
       'devices groups meta previous region_patterns routes',
       'old: reading did not create "static"');

    # every write creates "static"

    is(ok_run('old: rollback', 'rollback', $old[0]),
       "rolled back to the table of generation 1: generation 2 -> 3\n",
       'old: rollback to a dump that had static rules');
    is(dump_of($old[0]), $dump1,
       'old: rollback restored the example table, static rules included');
    is(mdb_names($old[0]),
       'devices groups meta previous region_patterns routes static',
       'old: rollback created "static"');
    is(ok_run('old: bypass after rollback', 'bypass', $old[0], '/assets/x'),
       "static: prefix /assets/ (static[1])\n",
       'old: rollback restored the static rules of the example');

    ok_run('old: compile', 'compile', $st_json, $old[1]);
    is(dump_of($old[1]), $st_dump, 'old: compile with static rules');
    is(mdb_names($old[1]),
       'devices groups meta previous region_patterns routes static',
       'old: compile created "static"');

    ok_run('old: put', 'put', $old[2], 'ads', '*', 'ads_virginia');
    is_deeply(mdb_db($old[2], 'static'), [], 'old: put created an empty "static"');
    is(ok_run('old: rollback put', 'rollback', $old[2]),
       "rolled back to the table of generation 2: generation 3 -> 4\n",
       'old: rollback of the put');
}


# a pattern may contain newlines: readers split KIND at the first one

{
    my $nl = "$tmp/static-nl";
    my $src = spew("$tmp/static-nl.json", '{"schema": 1, "static": [{"pattern": '
                   . '"(?x) ^/news/ \\n [0-9]+ $  # an article"}]}');
    ok_run('compile multi-line pattern', 'compile', $src, $nl);
    my $d = dump_of($nl);
    ok(index($d, '"pattern": "(?x) ^/news/ \\n [0-9]+ $  # an article"') > 0,
       'a multi-line pattern is dumped with \n');
    spew("$tmp/static-nl-dump.json", $d);
    ok_run('compile multi-line dump', 'compile', "$tmp/static-nl-dump.json", $nl);
    is(dump_of($nl), $d, 'a multi-line pattern round trips');
    is(ok_run('bypass multi-line', 'bypass', $nl, '/news/12'),
       qq(static: pattern "(?x) ^/news/ \\u000a [0-9]+ \$  # an article" (static[0])\n),
       'bypass with a multi-line (?x) pattern');

    SKIP: {
        skip 'mdb_dump (lmdb-utils) is not installed', 1 unless $have_lmdb_utils;
        is_deeply(mdb_db($nl, 'static'),
                  [ '0000', "pattern\n(?x) ^/news/ \n [0-9]+ \$  # an article" ],
                  'LMDB: the first newline ends the kind, the rest is the value');
    }
}


# a damaged "static" database: every read names the first bad entry

SKIP: {
    skip 'mdb_load (lmdb-utils) is not installed', 27 unless $have_lmdb_utils;

    my $i = 0;

    for my $case (
        [ 'unknown kind', [ '0000', "exakt\n/x" ],
          'static "0000": unknown kind "exakt" (expected exact, prefix or pattern)' ],
        [ 'no newline', [ '0000', 'exact/x' ],
          'static "0000": no newline after the kind' ],
        [ 'path without "/"', [ '0000', "exact\n/a", '0001', "prefix\nx" ],
          'static "0001": prefix must start with "/", got "x"' ],
        [ 'space in a path', [ '0000', "exact\n/a b" ],
          'static "0000": exact must be visible ASCII (0x21-0x7e), got "/a b" (bad byte 0x20 at offset 2)' ],
        [ 'empty value', [ '0000', "exact\n" ],
          'static "0000": exact must be 1..1024 bytes, got 0 bytes' ],
        [ 'bad regex', [ '0000', "pattern\n(" ],
          'static "0000": pattern does not compile at offset 1: missing closing parenthesis' ],
        [ 'gap in the keys', [ '0000', "exact\n/a", '0002', "exact\n/b" ],
          'static key "0002", expected "0001"' ],
        [ 'duplicate', [ '0000', "exact\n/a", '0001', "prefix\n/a", '0002', "exact\n/a" ],
          'static "0002": duplicate of "0000" (exact "/a")' ],
    )
    {
        my ($name, $kv, $msg) = @$case;
        my $c = "$tmp/static-corrupt" . $i++;

        ok_run("corrupt static, $name: compile", 'compile', $no_static, $c);
        spew("$tmp/static-corrupt.txt", "VERSION=3\nformat=bytevalue\n"
             . "type=btree\nHEADER=END\n"
             . join('', map { ' ' . unpack('H*', $_) . "\n" } @$kv)
             . "DATA=END\n");
        system("mdb_load -s static '$c' < '$tmp/static-corrupt.txt'") == 0
            or skip 'mdb_load failed', 27;

        $msg = "$c: corrupt table: $msg\n";
        ($rc, $out, $err) = run('dump', $c);
        is("$rc|$out|$err", "1||$msg", "corrupt static, $name: dump");
        ($rc, $out, $err) = run('bypass', $c, '/a');
        is("$rc|$out|$err", "1||$msg", "corrupt static, $name: bypass");

        next if $i > 1;

        # once: writes refuse or repair, like for any other damage

        ($rc, $out, $err) = run('put', $c, 'cms', 'JP', 'cms_tokyo');
        is("$rc|$err", "1|$msg", 'corrupt static: put refuses');
        ($rc, $out, $err) = run('compile', $st_json, $c);
        is("$rc|$err", "0|$msg$c: warning: replacing an unreadable table; "
           . "it is not saved as the previous table\n",
           'corrupt static: compile repairs it, with a warning');
        is(dump_of($c), $st_dump, 'corrupt static: the repaired table');
    }
}


# --- usage errors: exit 2 ---------------------------------------------------

for my $case (
    [ [], qr/\Ausage: edge-orch-routes COMMAND/ ],
    [ ['frob'], qr/^edge-orch-routes: unknown command "frob"/ ],
    [ ['dump'], qr/^edge-orch-routes: dump takes 1 argument, got 0/ ],
    [ ['get', $dir, 'cms'], qr/^edge-orch-routes: get takes 3 arguments, got 2/ ],
    [ ['dump', $dir, '--device', 'x'],
      qr/^edge-orch-routes: dump does not take --device or --bucket$/ ],
    [ ['get', $dir, 'cms', 'JP', '--ua', 'x'],
      qr/^edge-orch-routes: get does not take --ua or --quiet$/ ],
    [ ['dump', $dir, '--owner', 'root'],
      qr/^edge-orch-routes: dump does not take --mapsize or --owner$/ ],
    [ ['get', $dir, 'cms', 'JP', '--device'],
      qr/^edge-orch-routes: option --device needs an argument$/m ],
    [ ['--bogus', 'dump', $dir],
      qr/^edge-orch-routes: unknown option --bogus\ntry "edge-orch-routes --help"\n\z/ ],
    [ ['put', $dir, 'cms', 'JP', 'a b'],
      qr/^edge-orch-routes: UPSTREAM must be a string of \[A-Za-z0-9_.:-\], got "a b" \(bad byte 0x20 at offset 1\)$/ ],
    [ ['get', $dir, 'c|ms', 'JP'],
      qr/^edge-orch-routes: SERVICE must be a string of .*bad byte 0x7c/ ],
    [ ['resolve', $dir, 'cms', 'J P'],
      qr/^edge-orch-routes: REGION must be a string of/ ],
    [ ['put-group', $dir, 'JP', '*'],
      qr/^edge-orch-routes: GROUP must be a string of .*not allowed here/ ],
    [ ['put', $dir, 'cms', 'JP', 'x', '--owner', 'no-such-user-here'],
      qr/^edge-orch-routes: --owner: unknown user "no-such-user-here"$/ ],
    [ ['compile', $example, $dir, '--mapsize', '12'],
      qr/^edge-orch-routes: --mapsize: bad size "12"/ ],
    [ ['bypass', $dir, 'about'],
      qr/\Aedge-orch-routes: PATH must start with "\/", got "about"\n\z/ ],
    [ ['bypass', $dir, ''],
      qr/\Aedge-orch-routes: PATH must start with "\/", got ""\n\z/ ],
    [ ['bypass', $dir],
      qr/^edge-orch-routes: bypass takes 2 arguments, got 1/ ],
    [ ['bypass', $dir, '/a', '--device', 'mobile'],
      qr/^edge-orch-routes: bypass does not take --device or --bucket$/ ],
    [ ['bypass', $dir, '/a', '-q'],
      qr/^edge-orch-routes: bypass does not take --ua or --quiet$/ ],
)
{
    my ($args, $re) = @$case;
    ($rc, $out, $err) = run(@$args);
    is($rc, 2, "usage error (@$args): exit 2");
    like($err, $re, "usage error (@$args): message");
}

($rc, $out, $err) = run('--help');
is($rc, 0, '--help: exit 0');
like($out, qr/\Ausage: edge-orch-routes COMMAND.*^  rollback DIR/ms,
     '--help: usage on stdout');

is(dump_of($dir), $good, 'usage errors wrote nothing');
is(generation($dir), $gen, 'usage errors did not change the generation');


# --- --owner and --mapsize ----------------------------------------------

SKIP: {
    my @nobody = getpwnam('nobody');
    skip 'needs root and a "nobody" user', 6 if $> != 0 || !@nobody;

    my $gid = $nobody[3];
    my $o = "$tmp/owned";

    $out = ok_run('compile --owner', 'compile', '--owner', "nobody:$gid",
                  '--mapsize', '8M', $example, $o);
    for my $f ($o, "$o/data.mdb", "$o/lock.mdb") {
        is(join(':', (stat $f)[4, 5]), "$nobody[2]:$gid", "$f owned by nobody");
    }
    ok_run('put --owner', 'put', $o, 'cms', 'XX', 'cms_tokyo', '--owner',
           'root');
    is(join(':', (stat "$o/lock.mdb")[4, 5]), "0:$gid",
       '--owner USER changes the owner, keeps the group');
}


# --- a concurrent reader sees the old or the new table, never a mix -------

{
    my $c = "$tmp/concurrent";
    my $small = "$tmp/small.json";

    spew($small, '{"schema": 1, "routes": [{"service": "cms", "region": "*", '
         . '"upstream": "cms_virginia"}]}');

    ok_run('compile A', 'compile', $example, $c);
    my $a = dump_of($c);
    ok_run('compile B', 'compile', $small, $c);
    my $b = dump_of($c);

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        for my $i (1 .. 30) {
            my $f = $i % 2 ? $example : $small;
            my $p = fork;
            POSIX::_exit(1) unless defined $p;
            if ($p == 0) {
                open STDOUT, '>', '/dev/null';
                exec { $bin } $bin, 'compile', $f, $c or POSIX::_exit(127);
            }
            waitpid $p, 0;
            POSIX::_exit(1) if $?;
        }
        POSIX::_exit(0);
    }

    my ($seen, $mixed, $errors) = (0, 0, 0);

    for ( ;; ) {
        my $done = waitpid($pid, POSIX::WNOHANG()) == $pid;
        my $writer = $?;
        my ($r, $d, $e) = run('dump', $c);

        if ($r != 0) {
            $errors++;
            diag("dump during writes: exit $r: $e");
        } elsif ($d ne $a && $d ne $b) {
            $mixed++;
        }

        $seen++;

        if ($done) {
            is($writer, 0, 'concurrent writer: 30 compiles succeeded');
            last;
        }
    }

    is($errors, 0, "concurrent reader: $seen dumps, none failed");
    is($mixed, 0, 'concurrent reader: every dump is exactly table A or B');
}

done_testing();
