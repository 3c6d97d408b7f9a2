# Pass mode: the assembled document goes to the origin (header or body),
# not to the client; the origin's answer streams back.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup();

repeat_each(2);
workers(2);
master_on();
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
upstream m { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream origin { server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location /_frag/a { return 200 '{"a":1}'; }
    location /_frag/big { echo -n '{"x":"'; echo_duplicate 9000 'y'; echo -n '"}'; }
    location /_frag/down { return 503; }
}
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    location / {
        echo_read_request_body;
        echo "$request_method $request_uri method=$http_x_edge_orch_method";
        echo "header=$http_x_edge_orch_payload";
        echo "body=$request_body";
    }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location @origin { proxy_pass http://origin; }
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
_EOC_
});

run_tests();

__DATA__

=== TEST 1: a small document travels base64-encoded in X-Edge-Orch-Payload
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=m;
    edge_orch_pass @origin;
}
--- request
GET /p?page=2
--- response_body
GET /p?page=2 method=
header=eyJhIjp7ImEiOjF9fQ==
body=
--- no_error_log
[error]
[alert]



=== TEST 2: a document over header_max goes as a POST body, with the method in X-Edge-Orch-Method
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=m;
    edge_orch_fragment big /_frag/big upstream=m;
    edge_orch_pass @origin header_max=4k;
}
--- request
GET /p
--- response_body_like chomp
^POST /p method=GET
header=
body=\{"a":\{"a":1\},"big":\{"x":"y{9000}"\}\}$
--- no_error_log
[error]



=== TEST 3: "body" always sends the body; $edge_orch_payload feeds proxy_set_body after a redirect to a uri
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=m;
    edge_orch_pass /render body;
}
location /render {
    internal;
    proxy_set_body "payload=$edge_orch_payload";
    proxy_pass http://origin;
}
--- request
GET /p?x=1
--- response_body
POST /render?x=1 method=GET
header=
body=payload={"a":{"a":1}}
--- no_error_log
[error]



=== TEST 4: a failed required fragment is answered at the edge, the origin is not called
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/down upstream=m;
    edge_orch_pass @origin;
}
--- request
GET /p
--- error_code: 502
--- response_body
{"error":"fragment failed","fragment":"a","reason":"status"}



=== TEST 5: bad edge_orch_pass targets fail nginx -t
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=m;
    edge_orch_pass origin;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_pass" needs a named location \(\@origin\) or a uri \(\/render\), got "origin" in \S+nginx\.conf:\d+/



=== TEST 6: client copies of the payload headers never reach the origin; the client gets the page's tags and outcome
--- config
location = /p {
    edge_orch;
    edge_orch_tags "page:p";
    edge_orch_fragment a /_frag/a upstream=m;
    edge_orch_pass @origin;
}
--- request
GET /p
--- more_headers
X-Edge-Orch-Payload: eyJmb3JnZWQiOnRydWV9
X-Edge-Orch-Method: DELETE
--- response_body
GET /p method=
header=eyJhIjp7ImEiOjF9fQ==
body=
--- response_headers
X-Edge-Orch: a=ok
Surrogate-Key: page:p
--- no_error_log
[error]



=== TEST 7: in body mode a forged header is dropped too, and the method header is ours
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=m;
    edge_orch_pass @origin body;
}
--- request
GET /p
--- more_headers
X-Edge-Orch-Payload: eyJmb3JnZWQiOnRydWV9
X-Edge-Orch-Method: DELETE
--- response_body
POST /p method=GET
header=
body={"a":{"a":1}}



=== TEST 8: HEAD carries the payload in the header even over header_max
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/a upstream=m;
    edge_orch_pass @origin header_max=4;
}
location @origin2 { return 200; }
--- request
HEAD /p
--- response_body
--- response_headers
X-Edge-Orch: a=ok
--- no_error_log
[error]
