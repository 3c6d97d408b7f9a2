# Replays the libFuzzer seed corpus and every input under fuzz/regressions/
# (crashers the fuzzers found, kept after the fix) through the fuzz
# targets once: the routes JSON compiler, the tag list parser, the purge
# JSON parser and the fragment JSON validation.  See ./build.sh fuzz.
use strict;
use warnings;
use Test::More;

plan skip_all => 'clang is not installed (needed for the fuzz targets)'
    if system('command -v clang >/dev/null 2>&1') != 0;

my $out = `bash ./build.sh fuzz --replay 2>&1`;
my $rc = $?;

for my $line (split /\n/, $out) {
    if ($line =~ /^(ok|FAIL) (\w+)(.*)/) {
        ok($1 eq 'ok', "fuzz target $2 replays its seeds and regressions$3");
    }
}

is($rc, 0, 'build.sh fuzz --replay') or diag($out);

done_testing();
