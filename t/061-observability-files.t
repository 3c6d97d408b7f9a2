# The observability examples: examples/grafana-dashboard.json is a valid
# Grafana dashboard whose queries use only metrics the module exports, and
# examples/prometheus.yml a valid scrape configuration for edge_orch_status.
# Every metric family the status page exports is documented in
# docs/observability.md.  No nginx is started.
use strict;
use warnings;
use Test::More;
use JSON::PP ();
use YAML ();

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

# metric families of the status page, from its source: "edge_orch_..."
my $src = slurp('ngx_edge_orch_module/ngx_http_edge_orch_status.c');
my %family = map { $_ => 1 } $src =~ /"(edge_orch_[a-z_]+)"/g;
my %histogram = map { $_ => 1 } $src =~
    /"(edge_orch_[a-z_]+)", "histogram"/g;
cmp_ok(scalar keys %family, '>=', 30, 'metric families found in the source');
ok($histogram{edge_orch_fragment_duration_seconds}, 'the duration histogram');

sub family_of {
    my ($name) = @_;
    if ($name =~ /^(.*)_(?:bucket|sum|count)$/ && $histogram{$1}) {
        return $1;
    }
    return $family{$name} ? $name : undef;
}

# the series names of a histogram are not families of their own
for my $h (keys %histogram) {
    delete $family{"${h}_$_"} for qw(bucket sum count);
}

# ----------------------------------------------------------------- docs

my $doc = slurp('docs/observability.md');
for my $f (sort keys %family) {
    like($doc, qr/`\Q$f\E(?:\{[^`]*\})?`/, "docs/observability.md documents $f");
}

# ------------------------------------------------------------- dashboard

my $dash = eval { JSON::PP->new->decode(slurp('examples/grafana-dashboard.json')) };
ok($dash, 'grafana-dashboard.json is valid JSON') or diag($@);
$dash //= {};

ok(defined $dash->{title} && $dash->{title} ne '', 'the dashboard has a title');
like($dash->{uid} // '', qr/^[a-zA-Z0-9_-]{1,40}$/, 'a valid uid');
cmp_ok($dash->{schemaVersion} // 0, '>=', 30, 'a current schema version');

my %vars = map { $_->{name} => 1 } @{ $dash->{templating}{list} // [] };
ok($vars{datasource} && $vars{instance}, 'datasource and instance variables');

my @panels = @{ $dash->{panels} // [] };
cmp_ok(scalar @panels, '>=', 10, 'panels');

my (%ids, %used, $queries);
for my $p (@panels) {
    my $what = "panel $p->{id} \"" . ($p->{title} // '') . '"';
    ok(!$ids{ $p->{id} }++, "$what: unique id");
    my $g = $p->{gridPos} // {};
    ok(defined $g->{x} && defined $g->{w} && $g->{x} + $g->{w} <= 24
       && $g->{h} > 0, "$what: fits the 24-column grid");

    next if $p->{type} eq 'row';

    like($p->{type}, qr/^(?:timeseries|stat|gauge|table|bargauge)$/,
         "$what: a known panel type");
    my @t = @{ $p->{targets} // [] };
    ok(@t, "$what: has queries");
    my %ref;
    for my $t (@t) {
        $queries++;
        ok(!$ref{ $t->{refId} }++, "$what: unique refId $t->{refId}");
        my $expr = $t->{expr} // '';
        my @names = $expr =~ /\b(edge_orch_[a-z_]+)/g;
        ok(@names, "$what: the query uses the module's metrics");
        for my $n (@names) {
            my $f = family_of($n);
            ok($f, "$what: $n is exported by the module");
            $used{$f}++ if $f;
        }
        for my $v ($expr =~ /\$(?:\{)?(\w+)/g) {
            next if $v =~ /^__/;
            ok($vars{$v}, "$what: variable \$$v is defined");
        }
        is(($expr =~ tr/(//), ($expr =~ tr/)//), "$what: balanced parentheses");
    }
}

# what an operator looks at first must be on the dashboard
for my $f (qw(edge_orch_requests_total edge_orch_fragment_duration_seconds
              edge_orch_fragment_errors_total edge_orch_fragment_outcomes_total
              edge_orch_cache_hits_total edge_orch_zone_free_bytes
              edge_orch_routes_last_known_good_workers))
{
    ok($used{$f}, "the dashboard shows $f");
}

# --------------------------------------------------------------- scrape

my $prom = eval { YAML::Load(slurp('examples/prometheus.yml')) };
ok($prom, 'prometheus.yml is valid YAML') or diag($@);
$prom //= {};

like($prom->{global}{scrape_interval} // '', qr/^\d+[smh]$/, 'a scrape interval');
my @jobs = @{ $prom->{scrape_configs} // [] };
is(scalar @jobs, 1, 'one scrape job');
my $job = $jobs[0] // {};
ok($job->{job_name}, 'the job has a name');
like($job->{metrics_path} // '', qr{^/}, 'a metrics path');
is_deeply($job->{params}{format}, ['prometheus'], 'asks for ?format=prometheus');
my @targets = map { @{ $_->{targets} // [] } } @{ $job->{static_configs} // [] };
ok(@targets, 'targets');
like($_, qr/^[\w.-]+:\d+$/, "target $_ is host:port") for @targets;

done_testing();
