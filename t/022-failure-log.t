# Failure log lines: one per fragment and second, with a count of the rest.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;

edge_orch_setup();

repeat_each(1);
workers(1);
master_on();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: a failure is logged with fragment, reason, upstream and status
--- http_config
upstream good { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    location / { return 503; }
}
--- config
location = /p {
    edge_orch;
    edge_orch_fragment b /_frag/x upstream=good fallback=[];
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /p
--- response_body chomp
{"b":[]}
--- error_log
edge_orch: fragment "b" failed (status, upstream "good", status 503), using fallback
--- no_error_log
[error]
while sending to client



=== TEST 2: repeated failures within a second are counted, not logged
--- init
use IO::Socket::INET;
for (1 .. 3) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => server_port())
        or die "connect: $!";
    print $s "GET /p HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $resp = <$s>;
    die "unexpected: $resp" unless $resp =~ /^HTTP\/1\.1 200/;
}
select undef, undef, undef, 1.1;
--- http_config
upstream good { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    location / { return 503; }
}
--- config
location = /p {
    edge_orch;
    edge_orch_fragment b /_frag/x upstream=good optional;
}
location /_frag/ { internal; proxy_pass http://$edge_orch_upstream; }
--- request
GET /p
--- response_body chomp
{}
--- error_log eval
[qr/edge_orch: fragment "b" failed \(status, upstream "good", status 503\), left out/,
 qr/edge_orch: fragment "b": 2 more failures in the last second were not logged/]
