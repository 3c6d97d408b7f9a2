# Fan-out and assembly: parallel fragments, document shape, HEAD, methods,
# headers that reach fragments, per-fragment outcome.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup(lua => 1);

repeat_each(2);
workers(2);
master_on();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: fragments are assembled in declaration order
--- http_config
upstream cms_a { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream ads_a { server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / { return 200 '{"articles":[{"id":1,"title":"A"}]}'; }
}
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    default_type application/json;
    location / { return 200 '[1,2,3]'; }
}
--- config
location = /page {
    edge_orch;
    edge_orch_fragment zeta /_frag/ads upstream=ads_a;
    edge_orch_fragment cms /_frag/cms upstream=cms_a;
    edge_orch_fragment alpha /_frag/ads upstream=ads_a;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /page
--- response_body chomp
{"zeta":[1,2,3],"cms":{"articles":[{"id":1,"title":"A"}]},"alpha":[1,2,3]}
--- response_headers
Content-Type: application/json
Content-Length: 74
X-Edge-Orch: zeta=ok; cms=ok; alpha=ok
--- no_error_log
[error]
[alert]
[crit]
[warn]



=== TEST 2: all fragments are fetched concurrently
Each mock upstream counts the fetches of this page that have started, then
sleeps; a fetch reports how many had started when it finished.  Sequential
fetches would report 1, 2, 3; concurrent ones report 3 each.
--- http_config
lua_shared_dict conc 1m;
upstream mock { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / {
        content_by_lua_block {
            local d = ngx.shared.conc
            local k = ngx.var.arg_k
            d:incr(k, 1, 0)
            ngx.sleep(0.3)
            ngx.print('{"started_when_done":' .. d:get(k) .. '}')
        }
    }
}
--- config
location = /page {
    edge_orch;
    edge_orch_fragment a /_frag/a?k=$request_id upstream=mock;
    edge_orch_fragment b /_frag/b?k=$request_id upstream=mock;
    edge_orch_fragment c /_frag/c?k=$request_id upstream=mock;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /page
--- response_body chomp
{"a":{"started_when_done":3},"b":{"started_when_done":3},"c":{"started_when_done":3}}
--- no_error_log
[error]
[alert]



=== TEST 3: HEAD gets the headers of GET and no body
--- http_config
upstream m { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    location / { return 200 '{"x":1}'; }
}
--- config
location = /page {
    edge_orch;
    edge_orch_fragment x /_frag/x upstream=m;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
HEAD /page
--- response_body
--- response_headers
Content-Type: application/json
Content-Length: 13
X-Edge-Orch: x=ok
--- no_error_log
[error]



=== TEST 4: methods other than GET and HEAD are refused
--- http_config
upstream m { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    location / { return 200 '{"x":1}'; }
}
--- config
location = /page {
    edge_orch;
    edge_orch_fragment x /_frag/x upstream=m;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
POST /page
{"some":"body"}
--- error_code: 405
--- no_error_log
[alert]
[crit]



=== TEST 5: fragments get no hop-by-hop, encoding, range, conditional headers or credentials, unless "credentials"
--- http_config
upstream m { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location / {
        return 200 '{"ae":"$http_accept_encoding","range":"$http_range","inm":"$http_if_none_match","cookie":"$http_cookie","auth":"$http_authorization","method":"$request_method","cl":"$http_content_length","uri":"$request_uri"}';
    }
}
--- config
location = /page {
    edge_orch;
    edge_orch_fragment h /_frag/h?id=$arg_id upstream=m;
    edge_orch_fragment c /_frag/c upstream=m credentials;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /page?id=42
--- more_headers
Accept-Encoding: gzip, br
Range: bytes=0-10
If-None-Match: "abc"
Cookie: session=s1
Authorization: Bearer t0k
--- response_body chomp
{"h":{"ae":"","range":"","inm":"","cookie":"","auth":"","method":"GET","cl":"","uri":"/_frag/h?id=42"},"c":{"ae":"","range":"","inm":"","cookie":"session=s1","auth":"Bearer t0k","method":"GET","cl":"","uri":"/_frag/c"}}
--- no_error_log
[error]



=== TEST 6: the outcome variable is available to the access log
--- http_config
log_format orch '$request_uri [$edge_orch_fragments] region=$edge_orch_region gen=$edge_orch_routes_generation';
upstream m { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    location /_frag/ok { return 200 '"fine"'; }
    location /_frag/no { return 503; }
}
--- config
location = /page {
    access_log logs/orch.log orch;
    edge_orch;
    edge_orch_fragment a /_frag/ok upstream=m;
    edge_orch_fragment b /_frag/no upstream=m optional;
}
location = /log {
    default_type text/plain;
    alias $TEST_NGINX_SERVER_ROOT/logs/orch.log;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request eval
["GET /page", "GET /log"]
--- response_body eval
['{"a":"fine"}', qr{^/page \[a=ok; b=omitted:status\] region=default gen=0\n}]
--- no_error_log
[error]



=== TEST 7: a client request body is discarded and never reaches fragments
--- http_config
upstream m { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    location / { return 200 '{"cl":"$http_content_length","te":"$http_transfer_encoding"}'; }
}
--- config
location = /page {
    edge_orch;
    edge_orch_fragment x /_frag/x upstream=m;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- raw_request eval
"GET /page HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
--- response_body chomp
{"x":{"cl":"","te":""}}
--- no_error_log
[error]
