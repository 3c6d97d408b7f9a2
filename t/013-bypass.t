# Static-route bypass: paths marked static in the routing table skip the
# fan-out and go to edge_orch_bypass's location.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup();

my $table = <<'_JSON_';
{
  "schema": 1,
  "routes": [ { "service": "cms", "region": "*", "upstream": "cms_a" } ],
  "static": [
    { "exact": "/about" },
    { "prefix": "/assets/" },
    { "pattern": "^/articles/[0-9]+/amp$" }
  ]
}
_JSON_

$ENV{TEST_NGINX_ROUTES} = routes_dir($table);

repeat_each(2);
workers(2);
master_on();
no_shuffle();
no_root_location();

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
edge_orch_routes $TEST_NGINX_ROUTES;
upstream cms_a { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    location / { return 200 '"orchestrated"'; }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location / {
    edge_orch;
    edge_orch_fragment cms /_frag/cms;
    edge_orch_bypass @static;
}
location @static { return 200 "static $uri gen=$edge_orch_routes_generation\n"; }
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: exact, prefix and pattern rules bypass; other paths are orchestrated
--- request eval
["GET /about", "GET /assets/app.js", "GET /articles/42/amp", "GET /articles/42", "GET /about/team", "GET /About"]
--- response_body eval
["static /about gen=1\n", "static /assets/app.js gen=1\n", "static /articles/42/amp gen=1\n",
 '{"cms":"orchestrated"}', '{"cms":"orchestrated"}', '{"cms":"orchestrated"}']
--- no_error_log
[error]
[alert]



=== TEST 2: the decision is the same on repeated requests (cached per path and generation)
--- request eval
["GET /about", "GET /about", "GET /articles/7/amp", "GET /articles/7/amp", "GET /x", "GET /x"]
--- response_body eval
["static /about gen=1\n", "static /about gen=1\n", "static /articles/7/amp gen=1\n",
 "static /articles/7/amp gen=1\n", '{"cms":"orchestrated"}', '{"cms":"orchestrated"}']



=== TEST 3: a bad target fails nginx -t
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_frag/cms;
    edge_orch_bypass static;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_bypass" needs a named location \(\@static\) or a uri, got "static" in \S+nginx\.conf:\d+/
