# Edge token validation (edge_orch_jwt*): HS256, RS256 and ES256 with keys
# from an HMAC secret, PEM public keys and a JWK set; exp/nbf/leeway,
# iss/aud; everything that must be rejected (alg none, algorithm
# confusion, tampering, malformed and oversized tokens); token from a
# cookie; claims forwarded to fragments and used in a cache key; errors
# at "nginx -t".
#
# Keys are generated when the file starts (openssl genpkey) in a temp dir
# ($TEST_NGINX_JWT_DIR); tokens are built here: HS256 with Digest::SHA,
# RS256/ES256 signed by "openssl dgst -sha256 -sign" (ECDSA's DER
# signature turned into JOSE's raw r||s).
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use EdgeOrch;
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64url);
use Digest::SHA qw(hmac_sha256);
use JSON::PP ();

edge_orch_setup();

repeat_each(2);
no_shuffle();

my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_JWT_DIR} = $dir;

sub sh {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "$cmd: $out" if $? != 0;
    return $out;
}

sub spew {
    my ($file, $data) = @_;
    open my $fh, '>', $file or die "$file: $!";
    binmode $fh;
    print $fh $data;
    close $fh;
}

sub slurp_bin {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    binmode $fh;
    local $/;
    return scalar <$fh>;
}

for my $k (qw(rsa rsa2)) {
    sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"
       . " -out $dir/$k.key");
    sh("openssl pkey -in $dir/$k.key -pubout -out $dir/$k.pub");
}

sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
   . " -out $dir/ec.key");
sh("openssl pkey -in $dir/ec.key -pubout -out $dir/ec.pub");
sh("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024"
   . " -out $dir/small.key");
sh("openssl pkey -in $dir/small.key -pubout -out $dir/small.pub");

my $secret = 'edge-orch-test-secret-0123456789abcdef';
spew("$dir/hs.secret", "$secret\n");
spew("$dir/short.secret", "too-short\n");

# a JWK set from the same keys: RSA n/e, EC x/y (the last 65 bytes of the
# SubjectPublicKeyInfo DER are the point 04 || x || y)
my $mod = sh("openssl pkey -pubin -in $dir/rsa2.pub -noout -modulus"
             . " 2>/dev/null || openssl rsa -pubin -in $dir/rsa2.pub"
             . " -noout -modulus");
$mod =~ /Modulus=([0-9A-F]+)/ or die "no modulus: $mod";
my $n = pack 'H*', $1;
sh("openssl pkey -pubin -in $dir/ec.pub -outform DER -out $dir/ec.der");
my $point = substr(slurp_bin("$dir/ec.der"), -65);
die "not an uncompressed point" unless substr($point, 0, 1) eq "\x04";

my $json = JSON::PP->new->canonical;

spew("$dir/jwks.json", $json->encode({ keys => [
    { kty => 'RSA', kid => 'rsa-2', use => 'sig', alg => 'RS256',
      n => encode_base64url($n), e => 'AQAB' },
    { kty => 'EC', kid => 'ec-1', crv => 'P-256',
      x => encode_base64url(substr($point, 1, 32)),
      y => encode_base64url(substr($point, 33, 32)) },
    { kty => 'OKP', kid => 'ed-1', crv => 'Ed25519', x => 'AAAA' },
    { kty => 'RSA', kid => 'enc-1', use => 'enc',
      n => encode_base64url($n), e => 'AQAB' },
] }));

# ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s
sub der_to_raw {
    my ($der) = @_;
    my $i = 2;
    my @out;
    for (1 .. 2) {
        die "bad DER" unless ord(substr($der, $i, 1)) == 2;
        my $len = ord(substr($der, $i + 1, 1));
        my $v = substr($der, $i + 2, $len);
        $v =~ s/^\x00+//;
        push @out, ("\x00" x (32 - length $v)) . $v;
        $i += 2 + $len;
    }
    return join '', @out;
}

sub sign {
    my ($alg, $input, $key) = @_;
    return hmac_sha256($input, $key // $secret) if $alg eq 'HS256';
    spew("$dir/input", $input);
    sh("openssl dgst -sha256 -sign $key -out $dir/sig $dir/input");
    my $sig = slurp_bin("$dir/sig");
    return $alg eq 'ES256' ? der_to_raw($sig) : $sig;
}

# jwt(alg => ..., key => file or secret, claims => {...}, header => {...})
sub jwt {
    my (%o) = @_;
    my $hdr = { alg => $o{alg}, typ => 'JWT', %{ $o{header} // {} } };
    my $input = encode_base64url($o{raw_header} // $json->encode($hdr))
                . '.' . encode_base64url($o{raw_claims}
                                         // $json->encode($o{claims}));
    return "$input." . encode_base64url(sign($o{alg}, $input, $o{key}));
}

my $now = time;
my %ok = (sub => 'alice', exp => $now + 3600);

our %T = (
    hs      => jwt(alg => 'HS256', claims => \%ok),
    rs      => jwt(alg => 'RS256', key => "$dir/rsa.key", claims => \%ok),
    es      => jwt(alg => 'ES256', key => "$dir/ec.key", claims => \%ok),
    rs_kid  => jwt(alg => 'RS256', key => "$dir/rsa2.key", claims => \%ok,
                   header => { kid => 'rsa-2' }),
    es_kid  => jwt(alg => 'ES256', key => "$dir/ec.key", claims => \%ok,
                   header => { kid => 'ec-1' }),
    rs_unknown_kid => jwt(alg => 'RS256', key => "$dir/rsa2.key",
                          claims => \%ok, header => { kid => 'rsa-9' }),
    es_wrong_kid => jwt(alg => 'ES256', key => "$dir/ec.key", claims => \%ok,
                        header => { kid => 'rsa-2' }),
    rs_other_key => jwt(alg => 'RS256', key => "$dir/rsa2.key",
                        claims => \%ok),
    expired => jwt(alg => 'HS256', claims => { sub => 'a',
                                               exp => $now - 3600 }),
    # 10 minutes off: within a leeway of 15m however slow the run
    late    => jwt(alg => 'HS256', claims => { sub => 'a',
                                               exp => $now - 600 }),
    early   => jwt(alg => 'HS256', claims => { sub => 'a',
                                               nbf => $now + 600,
                                               exp => $now + 3600 }),
    future  => jwt(alg => 'HS256', claims => { sub => 'a',
                                               nbf => $now + 3600,
                                               exp => $now + 7200 }),
    no_exp  => jwt(alg => 'HS256', claims => { sub => 'a' }),
    str_exp => jwt(alg => 'HS256', claims => { sub => 'a',
                                               exp => "$ok{exp}" }),
    iss_ok  => jwt(alg => 'HS256', claims => { %ok, iss => 'https://idp',
                                               aud => 'web' }),
    iss_bad => jwt(alg => 'HS256', claims => { %ok, iss => 'https://evil',
                                               aud => 'web' }),
    aud_arr => jwt(alg => 'HS256', claims => { %ok, iss => 'https://idp',
                                               aud => ['api', 'web'] }),
    aud_bad => jwt(alg => 'HS256', claims => { %ok, iss => 'https://idp',
                                               aud => ['api', 'admin'] }),
    aud_none => jwt(alg => 'HS256', claims => { %ok, iss => 'https://idp' }),
    # HS256 "signed" with the RSA public key as the HMAC secret
    confused => jwt(alg => 'HS256', key => slurp_bin("$dir/rsa.pub"),
                    claims => \%ok),
    bad_json => jwt(alg => 'HS256', raw_claims => '{"sub":"a",'),
    arr_json => jwt(alg => 'HS256', raw_claims => '[1,2]'),
    dup_alg  => jwt(alg => 'HS256', raw_header =>
                    '{"alg":"HS256","alg":"HS256"}', claims => \%ok),
    crit     => jwt(alg => 'HS256', claims => \%ok,
                    header => { crit => ['exp'], exp => 1 }),
    claims  => jwt(alg => 'HS256', claims => { %ok, userId => 'U-7',
                                               roles => ['a', 'b'],
                                               n => 42, admin => JSON::PP::true,
                                               nested => { x => 1 },
                                               bad => "x\r\nX-Evil: 1" }),
    gold1   => jwt(alg => 'HS256', claims => { %ok, sub => 'u1',
                                               segment => 'gold' }),
    gold2   => jwt(alg => 'HS256', claims => { %ok, sub => 'u2',
                                               segment => 'gold' }),
    silver  => jwt(alg => 'HS256', claims => { %ok, sub => 'u3',
                                               segment => 'silver' }),
    no_sub  => jwt(alg => 'HS256', claims => { exp => $now + 3600 }),
    big_ok  => jwt(alg => 'HS256', claims => { %ok, pad => 'x' x 5500 }),
    too_big => jwt(alg => 'HS256', claims => { %ok, pad => 'x' x 6500 }),
);

die "big_ok is not under 8k" unless length $T{big_ok} <= 8192;
die "too_big is not over 8k" unless length $T{too_big} > 8192;

# unsigned: alg none, empty signature, in several spellings
my $p = encode_base64url($json->encode(\%ok));
$T{none} = encode_base64url('{"alg":"none","typ":"JWT"}') . ".$p.";
$T{none_sig} = encode_base64url('{"alg":"none"}') . ".$p."
               . encode_base64url('x' x 32);
$T{NONE} = encode_base64url('{"alg":"NONE"}') . ".$p.";

# tampered: a valid signature over other claims
{
    my @s = split /\./, $T{rs};
    $T{tampered} = join '.', $s[0],
                   encode_base64url($json->encode({ %ok, sub => 'admin' })),
                   $s[2];
    @s = split /\./, $T{hs};
    $T{two_parts} = "$s[0].$s[1]";
    $T{four_parts} = "$T{hs}.$s[2]";
    $T{padded} = "$s[0].$s[1].$s[2]=";
    $T{bad_b64} = "$s[0].$s[1].$s[2]*";
    # the same signature in the standard alphabet (+ and /): one is needed
    # that has a character that differs
    my ($i, $t) = (0, $T{hs});
    $t = jwt(alg => 'HS256', claims => { %ok, n => ++$i })
        until (split /\./, $t)[2] =~ /[-_]/;
    $T{std_b64} = $t =~ s/([^.]*)$/$1 =~ tr{-_}{+\/}r/er;
    $T{bad_hdr} = encode_base64url('{"alg":"HS256"') . ".$s[1].$s[2]";
    $T{empty_payload} = "$s[0]..$s[2]";
}

add_block_preprocessor(sub {
    my $block = shift;
    my $hc = $block->http_config // '';
    $block->set_value("http_config", <<'_EOC_' . $hc);
large_client_header_buffers 4 16k;
upstream mock { server 127.0.0.1:$TEST_NGINX_RAND_PORT_1; }
server {
    listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    default_type application/json;
    location /_frag/who {
        return 200 '{"user":"$http_x_user"}';
    }
    location /_frag/seg {
        return 200 '{"segment":"$http_x_segment","user":"$http_x_user"}';
    }
}
_EOC_
    my $c = $block->config // '';
    $block->set_value("config", $c . <<'_EOC_');
location /_frag/ {
    internal;
    proxy_pass http://$edge_orch_upstream;
}
_EOC_
});

run_tests();

__DATA__

=== TEST 1: valid HS256 token: the fan-out happens
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request
GET /p
--- more_headers eval
"Authorization: Bearer $::T{hs}"
--- response_body chomp
{"who":{"user":""}}
--- response_headers
X-Edge-Orch: who=ok
--- no_error_log
[error]
[alert]



=== TEST 2: valid RS256 token (PEM public key), scheme in any case
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request
GET /p
--- more_headers eval
"Authorization: bearer   $::T{rs}"
--- response_body chomp
{"who":{"user":""}}
--- no_error_log
[error]
[alert]



=== TEST 3: valid ES256 token (PEM public key)
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/ec.pub;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request
GET /p
--- more_headers eval
"Authorization: Bearer $::T{es}"
--- response_body chomp
{"who":{"user":""}}
--- no_error_log
[error]
[alert]



=== TEST 4: keys inherited from the server level; several key files
--- config
edge_orch_jwt on;
edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/ec.pub kid=ec-1;
location = /p {
    echo ok;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{hs}", "Authorization: Bearer $::T{rs}",
 "Authorization: Bearer $::T{es}", "Authorization: Bearer $::T{es_kid}"]
--- response_body eval
["ok\n", "ok\n", "ok\n", "ok\n"]
--- no_error_log
[error]
[alert]



=== TEST 5: JWK set: RS256 and ES256 selected by kid; unusable keys skipped
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/jwks.json;
    echo ok;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{rs_kid}", "Authorization: Bearer $::T{es_kid}",
 "Authorization: Bearer $::T{rs_unknown_kid}",
 "Authorization: Bearer $::T{es_wrong_kid}",
 "Authorization: Bearer $::T{rs}"]
--- error_code eval
[200, 200, 401, 401, 401]
--- response_body eval
["ok\n", "ok\n",
 '{"error":"invalid token","reason":"unknown_key"}',
 '{"error":"invalid token","reason":"unknown_key"}',
 '{"error":"invalid token","reason":"signature"}']
--- no_error_log
[error]
[alert]



=== TEST 6: expired token: 401 with a JSON body, no fan-out
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request
GET /p
--- more_headers eval
"Authorization: Bearer $::T{expired}"
--- error_code: 401
--- response_body chomp
{"error":"invalid token","reason":"expired"}
--- response_headers
Content-Type: application/json
WWW-Authenticate: Bearer error="invalid_token"
Cache-Control: no-store
!X-Edge-Orch
--- error_log
edge_orch: token rejected: expired
--- no_error_log
[error]
[alert]



=== TEST 7: missing token: "Bearer" without an error code (RFC 6750 3.1)
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request eval
["GET /p", "GET /p", "GET /p"]
--- more_headers eval
["", "Authorization: Basic YTpi", "Authorization: Bearer "]
--- error_code eval
[401, 401, 401]
--- response_body eval
['{"error":"invalid token","reason":"missing"}',
 '{"error":"invalid token","reason":"missing"}',
 '{"error":"invalid token","reason":"missing"}']
--- response_headers eval
["WWW-Authenticate: Bearer\n!X-Edge-Orch",
 "WWW-Authenticate: Bearer\n!X-Edge-Orch",
 "WWW-Authenticate: Bearer\n!X-Edge-Orch"]
--- no_error_log
[error]
[alert]



=== TEST 8: nbf in the future; a token without exp is refused
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    echo ok;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{future}", "Authorization: Bearer $::T{early}",
 "Authorization: Bearer $::T{no_exp}", "Authorization: Bearer $::T{str_exp}"]
--- error_code eval
[401, 401, 401, 401]
--- response_body eval
['{"error":"invalid token","reason":"not_yet_valid"}',
 '{"error":"invalid token","reason":"not_yet_valid"}',
 '{"error":"invalid token","reason":"no_expiry"}',
 '{"error":"invalid token","reason":"malformed"}']
--- no_error_log
[error]
[alert]



=== TEST 9: leeway: 10 min past exp and before nbf pass with 15m
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_leeway 15m;
    echo ok;
}
location = /strict {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    echo ok;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /strict"]
--- more_headers eval
["Authorization: Bearer $::T{late}", "Authorization: Bearer $::T{early}",
 "Authorization: Bearer $::T{expired}", "Authorization: Bearer $::T{late}"]
--- error_code eval
[200, 200, 401, 401]
--- response_body eval
["ok\n", "ok\n",
 '{"error":"invalid token","reason":"expired"}',
 '{"error":"invalid token","reason":"expired"}']
--- no_error_log
[error]
[alert]



=== TEST 10: issuer and audience (a string or an array)
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_issuer https://other https://idp;
    edge_orch_jwt_audience web;
    echo ok;
}
--- request eval
["GET /p", "GET /p", "GET /p", "GET /p", "GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{iss_ok}", "Authorization: Bearer $::T{aud_arr}",
 "Authorization: Bearer $::T{iss_bad}", "Authorization: Bearer $::T{aud_bad}",
 "Authorization: Bearer $::T{aud_none}", "Authorization: Bearer $::T{hs}"]
--- error_code eval
[200, 200, 401, 401, 401, 401]
--- response_body eval
["ok\n", "ok\n",
 '{"error":"invalid token","reason":"issuer"}',
 '{"error":"invalid token","reason":"audience"}',
 '{"error":"invalid token","reason":"audience"}',
 '{"error":"invalid token","reason":"issuer"}']
--- no_error_log
[error]
[alert]



=== TEST 11: alg "none" is always rejected, whatever its spelling or signature
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request eval
["GET /p", "GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{none}", "Authorization: Bearer $::T{none_sig}",
 "Authorization: Bearer $::T{NONE}"]
--- error_code eval
[401, 401, 401]
--- response_body eval
['{"error":"invalid token","reason":"algorithm"}',
 '{"error":"invalid token","reason":"algorithm"}',
 '{"error":"invalid token","reason":"algorithm"}']
--- response_headers eval
["!X-Edge-Orch", "!X-Edge-Orch", "!X-Edge-Orch"]
--- no_error_log
[error]
[alert]



=== TEST 12: algorithm confusion: HS256 token made with the RSA public key
--- config
location = /rsa-only {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
    echo ok;
}
location = /both {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_alg HS256 RS256;
    echo ok;
}
location = /rs256 {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_alg RS256;
    echo ok;
}
--- request eval
["GET /rsa-only", "GET /both", "GET /rs256", "GET /rs256"]
--- more_headers eval
["Authorization: Bearer $::T{confused}",
 "Authorization: Bearer $::T{confused}",
 "Authorization: Bearer $::T{hs}",
 "Authorization: Bearer $::T{rs}"]
--- error_code eval
[401, 401, 401, 200]
--- response_body eval
['{"error":"invalid token","reason":"algorithm"}',
 '{"error":"invalid token","reason":"signature"}',
 '{"error":"invalid token","reason":"algorithm"}',
 "ok\n"]
--- no_error_log
[error]
[alert]



=== TEST 13: tampered payload, signature of another key
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
    echo ok;
}
--- request eval
["GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{tampered}",
 "Authorization: Bearer $::T{rs_other_key}"]
--- error_code eval
[401, 401]
--- response_body eval
['{"error":"invalid token","reason":"signature"}',
 '{"error":"invalid token","reason":"signature"}']
--- no_error_log
[error]
[alert]



=== TEST 14: malformed tokens
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    echo ok;
}
--- request eval
[("GET /p") x 11]
--- more_headers eval
[map { "Authorization: Bearer $::T{$_}" }
 qw(two_parts four_parts padded bad_b64 std_b64 bad_hdr empty_payload
    bad_json arr_json dup_alg crit)]
--- error_code eval
[(401) x 11]
--- response_body eval
[('{"error":"invalid token","reason":"malformed"}') x 11]
--- no_error_log
[error]
[alert]



=== TEST 15: a token over 8 KB is refused before any parsing
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    echo ok;
}
--- request eval
["GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{big_ok}", "Authorization: Bearer $::T{too_big}"]
--- error_code eval
[200, 401]
--- response_body eval
["ok\n", '{"error":"invalid token","reason":"too_large"}']
--- no_error_log
[error]
[alert]



=== TEST 16: the token from a cookie; the Authorization header is then ignored
--- config
location = /p {
    edge_orch_jwt $cookie_session;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request eval
["GET /p", "GET /p"]
--- more_headers eval
["Cookie: theme=dark; session=$::T{hs}",
 "Authorization: Bearer $::T{hs}"]
--- error_code eval
[200, 401]
--- response_body eval
['{"who":{"user":""}}',
 '{"error":"invalid token","reason":"missing"}']
--- no_error_log
[error]
[alert]



=== TEST 17: a claim forwarded to the fragment; the client's copy is dropped
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_claim_header X-User sub;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- request eval
["GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{hs}\nX-User: mallory\nx-user: eve",
 "Authorization: Bearer $::T{no_sub}\nX-User: mallory"]
--- response_body eval
['{"who":{"user":"alice"}}',
 '{"who":{"user":""}}']
--- no_error_log
[error]
[alert]



=== TEST 18: $edge_orch_jwt_claim_*: strings, JSON for other values, any case
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_claim_header X-Roles roles;
    edge_orch_jwt_claim_header X-Bad bad;
    echo "sub=$edge_orch_jwt_claim_sub userId=$edge_orch_jwt_claim_userId";
    echo "roles=$edge_orch_jwt_claim_roles n=$edge_orch_jwt_claim_n";
    echo "admin=$edge_orch_jwt_claim_admin nested=$edge_orch_jwt_claim_nested";
    echo "bad=$edge_orch_jwt_claim_bad none=$edge_orch_jwt_claim_none";
    echo "h=$http_x_roles hbad=$http_x_bad";
}
location = /open {
    echo "sub=$edge_orch_jwt_claim_sub";
}
--- request eval
["GET /p", "GET /open"]
--- more_headers eval
["Authorization: Bearer $::T{claims}", "Authorization: Bearer $::T{claims}"]
--- response_body eval
['sub=alice userId=U-7
roles=["a","b"] n=42
admin=true nested={"x":1}
bad= none=
h=["a","b"] hbad=
', "sub=\n"]
--- no_error_log
[error]
[alert]



=== TEST 19: a claim in a fragment's key=: one cache entry per segment
--- http_config
edge_orch_zone name=z:1m;
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_claim_header X-Segment segment;
    edge_orch_jwt_claim_header X-User sub;
    edge_orch zone=z;
    edge_orch_fragment seg /_frag/seg upstream=mock ttl=60s
                       key=$edge_orch_jwt_claim_segment;
}
--- request eval
["GET /p", "GET /p", "GET /p"]
--- more_headers eval
["Authorization: Bearer $::T{gold1}", "Authorization: Bearer $::T{gold2}",
 "Authorization: Bearer $::T{silver}"]
--- response_body eval
['{"seg":{"segment":"gold","user":"u1"}}',
 '{"seg":{"segment":"gold","user":"u1"}}',
 '{"seg":{"segment":"silver","user":"u3"}}']
--- response_headers_like eval
["Cache-Status: edge-orch/seg; (fwd=miss; fwd-status=200; stored|hit; ttl=\\d+)",
 "Cache-Status: edge-orch/seg; hit; ttl=\\d+",
 "Cache-Status: edge-orch/seg; (fwd=miss; fwd-status=200; stored|hit; ttl=\\d+)"]
--- no_error_log
[error]
[alert]



=== TEST 20: edge_orch_jwt off in a nested location; HEAD gets headers only
--- config
location /app/ {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    location = /app/health {
        edge_orch_jwt off;
        echo healthy;
    }
    location = /app/private {
        echo private;
    }
}
--- request eval
["GET /app/health", "GET /app/private", "HEAD /app/private"]
--- error_code eval
[200, 401, 401]
--- response_body eval
["healthy\n", '{"error":"invalid token","reason":"missing"}', ""]
--- no_error_log
[error]
[alert]



=== TEST 21: satisfy any: an allowed address needs no token, others get 401
--- config
location = /p {
    satisfy any;
    allow 127.0.0.1;
    deny all;
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    echo ok;
}
location = /q {
    satisfy any;
    deny all;
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    echo ok;
}
--- request eval
["GET /p", "GET /q", "GET /q"]
--- more_headers eval
["", "", "Authorization: Bearer $::T{hs}"]
--- error_code eval
[200, 401, 200]
--- response_headers eval
["", "WWW-Authenticate: Bearer", ""]
--- no_error_log
[alert]



=== TEST 22: keep-alive: a rejected request (with a body) and the next one
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch;
    edge_orch_fragment who /_frag/who upstream=mock;
}
--- pipelined_requests eval
["POST /p\nsome body that is never read", "GET /p"]
--- more_headers eval
["", "Authorization: Bearer $::T{hs}"]
--- error_code eval
[401, 200]
--- response_body eval
['{"error":"invalid token","reason":"missing"}',
 '{"who":{"user":""}}']
--- no_error_log
[error]
[alert]



=== TEST 23: config error: a key file that does not exist
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/nope.pem;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*open\(\) key file ".*nope\.pem" failed .* in \S+nginx\.conf:\d+/



=== TEST 24: config error: unknown algorithm
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_alg HS256 PS256;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown algorithm "PS256" \(supported: HS256, RS256, ES256\) in \S+nginx\.conf:\d+/



=== TEST 25: config error: alg none
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret hmac;
    edge_orch_jwt_alg none;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*algorithm "none" is never accepted .* in \S+nginx\.conf:\d+/



=== TEST 26: config error: an allowed algorithm without a key of its type
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub;
    edge_orch_jwt_alg RS256 HS256;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_jwt_alg" allows HS256 but no "edge_orch_jwt_key_file" holds an HMAC secret \("hmac"\) in \S+nginx\.conf:\d+/



=== TEST 27: config error: a public key used as an HMAC secret
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.pub hmac;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*rsa\.pub" is a PEM or JSON file, not an HMAC secret.* in \S+nginx\.conf:\d+/



=== TEST 28: config error: a file that is no key, without "hmac"
--- config
location = /p {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/hs.secret;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*hs\.secret" is neither a PEM public key nor a JWK set; an HS256 secret needs the "hmac" parameter in \S+nginx\.conf:\d+/



=== TEST 29: config error: an HMAC secret shorter than 32 bytes
--- config
location = /a {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/short.secret hmac;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*short\.secret": HS256 secret of 9 bytes, at least 32 are needed in \S+nginx\.conf:\d+/



=== TEST 30: config error: 1024-bit RSA key
--- config
location = /a {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/small.pub;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*small\.pub": RSA key of 1024 bits, RS256 needs at least 2048 in \S+nginx\.conf:\d+/



=== TEST 31: config error: a private key
--- config
location = /a {
    edge_orch_jwt on;
    edge_orch_jwt_key_file $TEST_NGINX_JWT_DIR/rsa.key;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*rsa\.key" holds a private key: give the public key .* in \S+nginx\.conf:\d+/



=== TEST 32: config error: edge_orch_jwt without a key
--- config
location = /a {
    edge_orch_jwt on;
    echo ok;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"edge_orch_jwt" without any "edge_orch_jwt_key_file" in \S+nginx\.conf:\d+/
