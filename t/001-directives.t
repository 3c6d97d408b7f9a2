# Configuration errors fail "nginx -t" with a clear message and file:line.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup();

repeat_each(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: unknown fragment parameter
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a upstream=u tmeout=1s;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fragment "a": unknown parameter "tmeout=1s" \(expected service=, upstream=, timeout=, ttl=, stale=, key=, fallback=, optional or credentials\) in \S+nginx\.conf:\d+/



=== TEST 2: duplicate fragment name
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a upstream=u;
    edge_orch_fragment a /_f/b upstream=u;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*duplicate fragment name "a" in \S+nginx\.conf:\d+/



=== TEST 3: bad time value
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a timeout=fast;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fragment "a": invalid timeout "fast" in \S+nginx\.conf:\d+/



=== TEST 4: zero timeout
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a timeout=0;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fragment "a": invalid timeout "0"/



=== TEST 5: edge_orch without fragments
--- config
location = /p {
    edge_orch;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch" without any "edge_orch_fragment" in \S+nginx\.conf:\d+/



=== TEST 6: fragment without edge_orch
--- config
location = /p {
    edge_orch_fragment a /_f/a;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_fragment" without "edge_orch" in the same location in \S+nginx\.conf:\d+/



=== TEST 7: routes path missing
--- http_config
edge_orch_routes "";
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_routes" needs the path of an LMDB environment directory, got an empty string in \S+nginx\.conf:\d+/



=== TEST 8: routes directive without argument
--- http_config
edge_orch_routes;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid number of arguments in "edge_orch_routes" directive in \S+nginx\.conf:\d+/



=== TEST 9: duplicate routes directive
--- http_config
edge_orch_routes /tmp/a;
edge_orch_routes /tmp/b;
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_routes" directive is duplicate in \S+nginx\.conf:\d+/



=== TEST 10: inline fallback that is not JSON
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a 'fallback={"items":[}';
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fallback="\{"items":\[\}" is not valid JSON: .* in \S+nginx\.conf:\d+/



=== TEST 11: fallback file missing
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a fallback=@/nonexistent/fallback.json;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*open\(\) fallback file "\/nonexistent\/fallback\.json" failed \(2: No such file or directory\) in \S+nginx\.conf:\d+/



=== TEST 12: fallback file with invalid JSON
--- user_files
>>> bad.json
{"a": 1,}
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a fallback=@../html/bad.json;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fallback file ".*html\/bad\.json" is not valid JSON: .* in \S+nginx\.conf:\d+/



=== TEST 13: invalid fragment name
--- config
location = /p {
    edge_orch;
    edge_orch_fragment "a b" /_f/a;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid fragment name "a b"/



=== TEST 14: uri must be a local path
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a http://example.com/x;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fragment "a": uri "http:\/\/example\.com\/x" must start with "\/" in \S+nginx\.conf:\d+/



=== TEST 15: optional and fallback together
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a optional fallback=[];
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fragment "a": "optional" and "fallback=" exclude each other/



=== TEST 16: bad size
--- config
location = /p {
    edge_orch_max_fragment_size 12q;
    edge_orch;
    edge_orch_fragment a /_f/a;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_max_fragment_size" directive invalid value in \S+nginx\.conf:\d+/



=== TEST 17: edge_orch is not allowed at server level
--- http_config
server {
    listen 127.0.0.1:1985;
    edge_orch;
}
--- config
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch" directive is not allowed here in \S+nginx\.conf:\d+/



=== TEST 18: bad service name
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_f/a service=cms|x;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*fragment "a": invalid name in "service=cms\|x"/



=== TEST 19: a table that does not exist yet only warns; nginx starts
--- http_config
edge_orch_routes /nonexistent/edge-orch-routes;
--- config
location = /t { return 200 "up\n"; }
--- request
GET /t
--- response_body
up
--- error_log eval
qr/\[warn\] .*edge_orch_routes "\/nonexistent\/edge-orch-routes" has no table yet/
