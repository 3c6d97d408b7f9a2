# Self-test of the Test::Nginx::Socket runner (the real one or our
# t/compat fallback).  Uses stock nginx features only, no module.
use Test::Nginx::Socket;

repeat_each(2);
master_on();
workers(2);
log_level('warn');
no_long_string();

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();
env_to_nginx('PATH');

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->request && !defined $block->pipelined_requests
        && !defined $block->raw_request)
    {
        $block->set_value("request", "GET /t");
    }
});

# tests per repetition (the SKIPped block counts nothing)
plan tests => repeat_each() * 54;

run_tests();

__DATA__

=== TEST 1: plain return, default request from the preprocessor
--- config
    location = /t { return 200 "hello\n"; }
--- response_body
hello
--- no_error_log
[error]
[alert]



=== TEST 2: more_headers are sent
--- config
    location = /t { return 200 "foo=$http_x_foo bar=$http_x_bar\n"; }
--- more_headers
X-Foo: foo value
X-Bar: 42
--- response_body
foo=foo value bar=42



=== TEST 3: response_headers, absent header, empty-value header
--- config
    location = /t {
        add_header X-A "a value";
        add_header X-Empty "";
        return 200 "ok\n";
    }
--- response_headers
X-A: a value
!X-Absent
Content-Type: text/plain
X-Empty:
--- response_headers_like
X-A: this is ignored since response_headers is present
--- response_body
ok



=== TEST 4: 404 + error_log line from the missing file
--- config
--- request
GET /no-such-file.html
--- error_code: 404
--- error_log
open() "
failed (2: No such file or directory)
--- no_error_log
[alert]



=== TEST 5: 500 + error_log eval with qr// and string
--- config
    location /t { rewrite ^ /t last; }
--- error_code: 500
--- response_body_like: 500 Internal Server Error
--- error_log eval
[qr/rewrite or internal redirection cycle while processing "\/t"/, "[error]"]



=== TEST 6: must_die with an unknown directive
--- config
    location = /t { bogus_directive_xyz on; }
--- must_die
--- error_log
unknown directive "bogus_directive_xyz"



=== TEST 7: init writes a file that is served afterwards
--- config
    location = /t { default_type text/plain; alias $TEST_NGINX_HTML_DIR/from-init.txt; }
--- init
open my $fh, '>', html_dir() . "/from-init.txt" or die $!;
print $fh "written by init on port ", server_port(), "\n";
close $fh;
--- response_body_like chomp
^written by init on port \d+$



=== TEST 8: user_files
--- config
    location /files/ { alias $TEST_NGINX_HTML_DIR/sub/; }
--- user_files
>>> sub/a.txt
file a
>>> sub/b.txt
file b
--- request
GET /files/b.txt
--- response_body
file b



=== TEST 9: http_config with a mock upstream server on a random port
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 "backend saw $uri ($http_x_up)\n"; }
    }
--- config
    location /p/ {
        proxy_set_header X-Up "via-proxy";
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
--- request
GET /p/x?a=1
--- response_body
backend saw /p/x (via-proxy)



=== TEST 10: tcp_listen/tcp_reply mock (close-delimited -> chunked to us)
--- config
    location = /t {
        proxy_set_header Host "mock";
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_query eval
"GET /t HTTP/1.0\r\nHost: mock\r\nConnection: close\r\n\r\n"
--- tcp_reply eval
"HTTP/1.0 200 OK\r\nX-Mock: yes\r\nContent-Type: text/plain\r\n\r\nfrom tcp\n"
--- response_headers
X-Mock: yes
Transfer-Encoding: chunked
--- response_body
from tcp



=== TEST 11: POST body gets a Content-Length
--- config
    location = /t { return 200 "len=$content_length method=$request_method\n"; }
--- request
POST /t
hello world
--- response_body
len=11 method=POST



=== TEST 12: HEAD request has no body
--- config
    location = /t { return 200 "hello\n"; }
--- request
HEAD /t
--- response_headers
Content-Length: 6
--- response_body



=== TEST 13: pipelined requests on one connection
--- config
    location = /a { return 200 "A\n"; }
    location = /b { return 404; }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- error_code eval
[200, 404]
--- response_body_like eval
["^A\$", "404 Not Found"]
--- no_error_log
[error]



=== TEST 14: raw_request, response_headers_like, wait
--- config
    location = /t { return 200 "raw $server_protocol\n"; }
--- raw_request eval
"GET /t HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_headers_like
Server: nginx(/[\d.]+)?.*
Content-Length: \d+
--- response_body
raw HTTP/1.0
--- wait: 0.1



=== TEST 15: skip_nginx skips the block's 2 tests
--- config
    location = /t { return 500; }
--- skip_nginx
2: > 0.1.0
--- response_body
never checked



=== TEST 16: this block is SKIPped (it would fail)
--- config
    location = /t { return 500; }
--- response_body
never checked
--- SKIP



=== TEST 17: $TEST_NGINX_SERVER_PORT and a request array (one connection each)
--- config
    location = /t { return 200 "port $server_port\n"; }
    location = /u { return 201 "u\n"; }
--- request eval
["GET /t", "GET /u"]
--- error_code eval
[200, 201]
--- response_body eval
["port $ENV{TEST_NGINX_SERVER_PORT}\n", "u\n"]
