# Routing table: region -> group -> pattern -> default group -> "*",
# device class, A/B bucket, live changes without reload, generation.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup(lua => 1);

my $table = <<'_JSON_';
{
  "schema": 1,
  "default_group": "na",
  "groups": { "JP": "apac", "DE": "eu", "US": "na" },
  "region_patterns": [ { "pattern": "^(TW|HK)$", "group": "apac" } ],
  "devices": [ { "pattern": "(?i)iphone|android.+mobile", "class": "mobile" } ],
  "routes": [
    { "service": "cms", "region": "apac", "upstream": "cms_tokyo" },
    { "service": "cms", "region": "eu", "upstream": "cms_frankfurt" },
    { "service": "cms", "region": "*", "upstream": "cms_virginia" },
    { "service": "cms", "region": "JP", "bucket": "b", "upstream": "cms_experiment" },
    { "service": "ads", "region": "*", "upstream": "ads_virginia" },
    { "service": "ads", "region": "apac", "upstream": "ads_singapore" },
    { "service": "ads", "region": "*", "device": "mobile", "upstream": "ads_mobile" },
    { "service": "recs", "region": "JP", "upstream": "recs_typo" },
    { "service": "recs", "region": "*", "upstream": "recs_oregon" }
  ]
}
_JSON_

$ENV{TEST_NGINX_ROUTES} = routes_dir($table);
$ENV{TEST_NGINX_ROUTES_LIVE} = routes_dir($table);
$ENV{TEST_NGINX_CLI} = File::Spec->rel2abs($ENV{TEST_NGINX_EDGE_ORCH_CLI}
                                           || 'tools/edge-orch-routes');

repeat_each(2);
workers(2);
master_on();
no_shuffle();

# every upstream name is served by one mock that reports the Host header,
# which proxy_pass sets to the upstream name
add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    my $ups = join '', map { "upstream $_ { server 127.0.0.1:\$TEST_NGINX_RAND_PORT_1; }\n" }
        qw(cms_tokyo cms_frankfurt cms_virginia cms_experiment ads_virginia
           ads_singapore ads_mobile recs_oregon);
    $block->set_value("http_config", $ups . <<'_EOC_' . $hc);
edge_orch_region $http_x_region;
edge_orch_bucket $cookie_ab;
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / { return 200 '"$host"'; }
}
_EOC_
});

run_tests();

__DATA__

=== TEST 1: exact region, then its group, then "*"
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms;
    edge_orch_fragment ads /_f/ads;
    edge_orch_fragment recs /_f/recs;
    add_header X-Route "$edge_orch_region/$edge_orch_group gen=$edge_orch_routes_generation";
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /p
--- more_headers
X-Region: JP
--- response_body chomp
{"cms":"cms_tokyo","ads":"ads_singapore","recs":"recs_oregon"}
--- response_headers
X-Route: JP/apac gen=1
X-Edge-Orch: cms=ok; ads=ok; recs=ok
--- no_error_log
[error]



=== TEST 2: a group from the table (DE -> eu)
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms;
    edge_orch_fragment ads /_f/ads;
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /p
--- more_headers
X-Region: DE
--- response_body chomp
{"cms":"cms_frankfurt","ads":"ads_virginia"}



=== TEST 3: a region pattern (TW -> apac)
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms;
    add_header X-Group $edge_orch_group;
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /p
--- more_headers
X-Region: TW
--- response_body chomp
{"cms":"cms_tokyo"}
--- response_headers
X-Group: apac



=== TEST 4: unknown, empty and hostile regions use the default group
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms;
    add_header X-Route "$edge_orch_region/$edge_orch_group";
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request eval
["GET /p", "GET /p", "GET /p", "GET /p"]
--- more_headers eval
["X-Region: BR", "X-Region:", "X-Region: .*|JP", "X-Region: " . ("A" x 5000)]
--- response_body eval
['{"cms":"cms_virginia"}', '{"cms":"cms_virginia"}', '{"cms":"cms_virginia"}', '{"cms":"cms_virginia"}']
--- response_headers eval
["X-Route: BR/na", "X-Route: default/na", "X-Route: default/na", "X-Route: default/na"]
--- no_error_log
[error]



=== TEST 5: device class from the User-Agent; the region is still more specific
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment ads /_f/ads;
    add_header X-Device $edge_orch_device;
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request eval
["GET /p", "GET /p", "GET /p"]
--- more_headers eval
["X-Region: DE\nUser-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
 "X-Region: JP\nUser-Agent: Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari",
 "X-Region: DE\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)"]
--- response_body eval
['{"ads":"ads_mobile"}', '{"ads":"ads_singapore"}', '{"ads":"ads_virginia"}']
--- response_headers eval
["X-Device: mobile", "X-Device: mobile", "!X-Device"]



=== TEST 6: an A/B bucket is more specific than the region alone
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms;
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request eval
["GET /p", "GET /p", "GET /p"]
--- more_headers eval
["X-Region: JP\nCookie: ab=b", "X-Region: JP\nCookie: ab=a", "X-Region: DE\nCookie: ab=b"]
--- response_body eval
['{"cms":"cms_experiment"}', '{"cms":"cms_tokyo"}', '{"cms":"cms_frankfurt"}']



=== TEST 7: service= picks the table's service, upstream= is only a default
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment articles /_f/cms service=cms upstream=cms_virginia;
    edge_orch_fragment weather /_f/w upstream=ads_virginia;
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /p
--- more_headers
X-Region: JP
--- response_body chomp
{"articles":"cms_tokyo","weather":"ads_virginia"}



=== TEST 8: a live change with the CLI is seen by the next request, no reload
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES_LIVE;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms;
    add_header X-Gen $edge_orch_routes_generation;
    add_header X-Pid $pid;
}
location = /put {
    content_by_lua_block {
        local rc = os.execute("$TEST_NGINX_CLI put $TEST_NGINX_ROUTES_LIVE cms apac cms_frankfurt >/dev/null")
        ngx.say(rc == 0 or rc == true)
    }
}
location = /rollback {
    content_by_lua_block {
        local rc = os.execute("$TEST_NGINX_CLI rollback $TEST_NGINX_ROUTES_LIVE >/dev/null")
        ngx.say(rc == 0 or rc == true)
    }
}
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request eval
["GET /p", "GET /put", "GET /p", "GET /p", "GET /rollback", "GET /p"]
--- more_headers
X-Region: JP
--- response_body eval
['{"cms":"cms_tokyo"}', "true\n", '{"cms":"cms_frankfurt"}', '{"cms":"cms_frankfurt"}', "true\n", '{"cms":"cms_tokyo"}']
--- no_error_log
[error]
[alert]



=== TEST 9: the generation is visible to requests that are not orchestrated
--- http_config
edge_orch_routes $TEST_NGINX_ROUTES;
--- config
location = /p {
    edge_orch;
    edge_orch_fragment cms /_f/cms;
}
location = /gen { return 200 "gen=$edge_orch_routes_generation\n"; }
location /_f/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request eval
["GET /p", "GET /gen"]
--- response_body eval
['{"cms":"cms_virginia"}', "gen=1\n"]
