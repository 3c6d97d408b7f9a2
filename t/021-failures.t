# Failed fragments: timeouts, bad status, bad JSON, too big, encoded,
# refused, no route, truncated.  The client always gets valid JSON.
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
upstream good { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
upstream refused { server 127.0.0.1:1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location /_frag/ok { return 200 '{"ok":true}'; }
    location /_frag/slow { echo_sleep 2; echo '{"late":true}'; }
    location /_frag/s503 { return 503 '{"down":true}'; }
    location /_frag/s404 { return 404; }
    location /_frag/notjson { return 200 '<html>oops</html>'; }
    location /_frag/truncated { return 200 '{"a":[1,2'; }
    location /_frag/empty { return 200 ''; }
    location /_frag/nul { return 200 '{"a":"x\0y"}'; }
    location /_frag/big { return 200 '{"pad":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}'; }
    location /_frag/bigchunked { echo -n '{"pad":"'; echo_flush; echo_duplicate 200 'x'; echo -n '"}'; }
    location /_frag/gzip { gzip on; gzip_http_version 1.0; gzip_min_length 1; gzip_types *; return 200 '{"compressed":true}'; }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . "\nlocation /_frag/ { internal; proxy_pass http://\$edge_orch_upstream; }\n");
});

run_tests();

__DATA__

=== TEST 1: a timed-out fragment uses its fallback and the response does not wait for it
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/ok upstream=good;
    edge_orch_fragment b /_frag/slow upstream=good timeout=$TEST_NGINX_SHORT_TIMEOUT 'fallback={"late":false}';
}
--- request
GET /p
--- response_body chomp
{"a":{"ok":true},"b":{"late":false}}
--- response_headers
X-Edge-Orch: a=ok; b=fallback:timeout
--- no_error_log
[error]
[alert]



=== TEST 2: a timed-out required fragment gives 504 with a JSON error
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/ok upstream=good;
    edge_orch_fragment b /_frag/slow upstream=good timeout=$TEST_NGINX_SHORT_TIMEOUT;
}
--- request
GET /p
--- error_code: 504
--- response_body
{"error":"fragment failed","fragment":"b","reason":"timeout"}
--- response_headers
Content-Type: application/json
X-Edge-Orch: a=ok; b=failed:timeout
--- no_error_log
[alert]



=== TEST 3: a timed-out optional fragment is left out
--- config
location = /p {
    edge_orch;
    edge_orch_timeout $TEST_NGINX_SHORT_TIMEOUT;
    edge_orch_fragment b /_frag/slow upstream=good optional;
    edge_orch_fragment a /_frag/ok upstream=good;
}
--- request
GET /p
--- response_body chomp
{"a":{"ok":true}}
--- response_headers
X-Edge-Orch: b=omitted:timeout; a=ok
--- no_error_log
[alert]



=== TEST 4: non-2xx status from the upstream gives 502
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/ok upstream=good;
    edge_orch_fragment b /_frag/s503 upstream=good;
}
--- request
GET /p
--- error_code: 502
--- response_body
{"error":"fragment failed","fragment":"b","reason":"status"}
--- response_headers_like
X-Edge-Orch: a=(ok|cancelled); b=failed:status



=== TEST 5: 404 with a fallback
--- config
location = /p {
    edge_orch;
    edge_orch_fragment b /_frag/s404 upstream=good fallback=null;
}
--- request
GET /p
--- response_body chomp
{"b":null}
--- response_headers
X-Edge-Orch: b=fallback:status



=== TEST 6: a body that is not JSON is never passed on
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/notjson upstream=good 'fallback={"fallback":1}';
    edge_orch_fragment b /_frag/truncated upstream=good optional;
    edge_orch_fragment c /_frag/empty upstream=good optional;
    edge_orch_fragment d /_frag/nul upstream=good optional;
}
--- request
GET /p
--- response_body chomp
{"a":{"fallback":1}}
--- response_headers
X-Edge-Orch: a=fallback:invalid; b=omitted:invalid; c=omitted:invalid; d=omitted:invalid
--- no_error_log
[error]
[alert]



=== TEST 7: bodies over edge_orch_max_fragment_size fail, with or without Content-Length
--- config
location = /p {
    edge_orch;
    edge_orch_max_fragment_size 100;
    edge_orch_fragment a /_frag/big upstream=good optional;
    edge_orch_fragment b /_frag/bigchunked upstream=good optional;
    edge_orch_fragment c /_frag/ok upstream=good;
}
--- request
GET /p
--- response_body chomp
{"c":{"ok":true}}
--- response_headers
X-Edge-Orch: a=omitted:too_big; b=omitted:too_big; c=ok
--- no_error_log
[alert]



=== TEST 8: an encoded body fails as "encoding"
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/gzip upstream=good optional;
    edge_orch_fragment b /_frag/ok upstream=good;
}
location = /_frag/gzip {
    internal;
    proxy_set_header Accept-Encoding gzip;
    proxy_pass http://$edge_orch_upstream;
}
--- request
GET /p
--- response_body chomp
{"b":{"ok":true}}
--- response_headers
X-Edge-Orch: a=omitted:encoding; b=ok



=== TEST 9: a refused connection fails as "error" with 502
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/ok upstream=refused;
}
--- request
GET /p
--- error_code: 502
--- response_body
{"error":"fragment failed","fragment":"a","reason":"error"}
--- error_log
connect() failed (111: Connection refused)



=== TEST 10: no route and no upstream= gives 502 "no_route"
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/ok;
}
--- request
GET /p
--- error_code: 502
--- response_body
{"error":"fragment failed","fragment":"a","reason":"no_route"}
--- response_headers
X-Edge-Orch: a=failed:no_route



=== TEST 11: an upstream that closes in the middle of the body
--- http_config
upstream cut { server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":[1,2,3]}"
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/x upstream=cut fallback=[];
}
--- request
GET /p
--- response_body chomp
{"a":[]}
--- response_headers
X-Edge-Orch: a=fallback:error
--- error_log
upstream prematurely closed connection
--- no_error_log
[alert]



=== TEST 12: fallback from a file
--- user_files
>>> fb.json
{"items": [], "note": "served from fallback file"}
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/s503 upstream=good fallback=@../html/fb.json;
}
--- request
GET /p
--- response_body chomp
{"a":{"items": [], "note": "served from fallback file"}
}



=== TEST 13: garbage status line from the upstream
--- http_config
upstream junk { server 127.0.0.1:$TEST_NGINX_RAND_PORT_2; }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
"\x00\x01garbage\r\n\r\n"
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/x upstream=junk optional;
    edge_orch_fragment b /_frag/ok upstream=good;
}
--- request
GET /p
--- response_body chomp
{"b":{"ok":true}}
--- response_headers
X-Edge-Orch: a=omitted:status; b=ok
--- error_log
upstream sent no valid HTTP/1.0 header
--- no_error_log
[alert]



=== TEST 14: every fragment failing with fallbacks still gives a valid document
--- config
location = /p {
    edge_orch;
    edge_orch_fragment a /_frag/s503 upstream=good fallback=1;
    edge_orch_fragment b /_frag/notjson upstream=good fallback="x";
    edge_orch_fragment c /_frag/x upstream=refused optional;
}
--- request
GET /p
--- response_body chomp
{"a":1,"b":"x"}
