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

1;
