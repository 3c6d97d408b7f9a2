/*
 * edge-orch-routes: compile, inspect and update the LMDB routing table
 * that ngx_edge_orch_module reads.
 *
 * The table format is a contract with the module; it is described in
 * docs/routing-table.md.  Every write happens in one LMDB write
 * transaction, so nginx workers see either the old or the new table.
 *
 * Build:
 *   gcc -std=gnu99 -O2 -g -Wall -Wextra -Werror tools/edge-orch-routes.c \
 *       -o tools/edge-orch-routes -llmdb -ljansson -lpcre2-8
 */


#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <jansson.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>


#define EO_PROG            "edge-orch-routes"

#define EO_OK              0
#define EO_ERROR           1
#define EO_USAGE           2

#define EO_SCHEMA          "1"
#define EO_NAME_MAX        64
#define EO_PATTERN_MAX     1024
#define EO_ROUTES_MAX      100000
#define EO_GROUPS_MAX      10000
#define EO_RULES_MAX       1000
#define EO_STATIC_MAX      1000
#define EO_PATH_MAX        1024
#define EO_MAPSIZE         ((size_t) 64 * 1024 * 1024)
#define EO_MAPSIZE_MIN     ((size_t) 1024 * 1024)
#define EO_FILE_MAX        ((size_t) 256 * 1024 * 1024)
#define EO_MAXDBS          8

/* "SERVICE|REGION|DEVICE|BUCKET" */
#define EO_KEY_LEN         (4 * EO_NAME_MAX + 3)
#define EO_QUOTE_LEN       160
#define EO_ERR_LEN         512
#define EO_META_LEN        64

#define EO_NAME_CLASS      "[A-Za-z0-9_.:-]"
#define EO_PATH_CLASS      "visible ASCII (0x21-0x7e)"

#define EO_JSON_LOAD       (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL         \
                            | JSON_DECODE_ANY)
#define EO_JSON_DUMP       (JSON_INDENT(2) | JSON_PRESERVE_ORDER)

/* eo_db_open() modes */
#define EO_DB_READ         0
#define EO_DB_WRITE        1
#define EO_DB_CREATE       2

/* command flags: which options a command accepts */
#define EO_CMD_KEY         0x01    /* --device, --bucket */
#define EO_CMD_RESOLVE     0x02    /* --ua, --quiet */
#define EO_CMD_WRITE       0x04    /* --mapsize, --owner */


enum {
    EO_DB_ROUTES = 0,
    EO_DB_GROUPS,
    EO_DB_PATTERNS,
    EO_DB_DEVICES,
    EO_DB_STATIC,
    EO_DB_META,
    EO_DB_PREVIOUS,
    EO_DB_N
};


/* every named database needs a slot of mdb_env_set_maxdbs() */
typedef char  eo_maxdbs_check_t[(EO_DB_N <= EO_MAXDBS) ? 1 : -1];


/* static route kinds, in the order nginx tries them */
enum {
    EO_STATIC_EXACT = 0,
    EO_STATIC_PREFIX,
    EO_STATIC_PATTERN,
    EO_STATIC_N
};


typedef struct {
    char                *key;      /* route key or region */
    char                *value;    /* upstream or group */
    size_t               index;    /* position in the source */
} eo_pair_t;


typedef struct {
    char                *name;     /* group or device class */
    char                *pattern;  /* PCRE2 pattern, NUL-free */
} eo_rule_t;


typedef struct {
    int                  kind;     /* EO_STATIC_EXACT, _PREFIX, _PATTERN */
    char                *value;    /* path or PCRE2 pattern, NUL-free */
} eo_static_t;


typedef struct {
    char                *default_group;
    eo_pair_t           *groups;
    size_t               ngroups;
    eo_rule_t           *patterns;
    size_t               npatterns;
    eo_rule_t           *devices;
    size_t               ndevices;
    eo_pair_t           *routes;
    size_t               nroutes;
    eo_static_t         *statics;
    size_t               nstatics;
} eo_table_t;


typedef struct {
    const char          *dir;
    MDB_env             *env;
    MDB_txn             *txn;
    MDB_dbi              dbi[EO_DB_N];
    int                  have[EO_DB_N];
} eo_db_t;


typedef struct {
    const char          *cmd;
    char               **arg;      /* positional arguments after cmd */
    int                  nargs;
    const char          *device;
    const char          *bucket;
    const char          *ua;
    const char          *owner;
    size_t               mapsize;
    uid_t                uid;
    gid_t                gid;
    int                  quiet;
} eo_opts_t;


typedef struct {
    const char          *name;
    int                (*handler)(eo_opts_t *o);
    int                  nargs;
    unsigned             flags;
} eo_command_t;


static void eo_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void eo_usage(FILE *f);
static int eo_name_char(int c);
static char *eo_quote(char *buf, size_t size, const char *s, size_t len);
static char *eo_repr(char *buf, size_t size, json_t *v);
static void eo_print_string(const char *s);
static int eo_key_is(const char *key, size_t len, const char *name);
static int eo_check_name(const char *s, size_t len, int star, char *err,
    size_t size);
static int eo_json_name(const char *src, const char *where, json_t *v,
    int star, char **out);
static int eo_check_pattern(const char *s, size_t len, char *err,
    size_t size);
static int eo_check_path(const char *s, size_t len, char *err, size_t size);
static int eo_check_static(int kind, const char *s, size_t len, char *err,
    size_t size);
static char *eo_static_repr(char *buf, size_t size, eo_static_t *r);
static void eo_print_static(eo_static_t *r);
static size_t eo_static_dup(eo_static_t *rules, size_t i);
static int eo_regex_compile(const char *pattern, pcre2_code **re, char *err,
    size_t size);
static int eo_regex_match(pcre2_code *re, const char *subject);
static char *eo_strndup(const char *s, size_t len);
static int eo_parse_u64(const char *s, uint64_t *v);
static int eo_pair_cmp(const void *a, const void *b);
static int eo_pair_find_cmp(const void *key, const void *elt);
static eo_pair_t *eo_pair_find(eo_pair_t *pairs, size_t n, const char *key);
static void eo_route_key(char *buf, const char *service, const char *region,
    const char *device, const char *bucket);
static int eo_route_key_check(const char *key, size_t len, char *err,
    size_t size);

static void eo_table_free(eo_table_t *t);
static int eo_table_from_json(const char *src, json_t *root, eo_table_t *t);
static int eo_parse_groups(const char *src, json_t *obj, eo_table_t *t);
static int eo_parse_rules(const char *src, const char *kind,
    const char *field, json_t *arr, eo_rule_t **rules, size_t *nrules);
static int eo_parse_route(const char *src, size_t i, json_t *e,
    eo_pair_t *p);
static int eo_parse_routes(const char *src, json_t *arr, eo_table_t *t);
static int eo_parse_static(const char *src, json_t *arr, eo_table_t *t);
static int eo_table_load(const char *src, const char *buf, size_t len,
    eo_table_t *t);
static int eo_table_load_file(const char *path, eo_table_t *t);
static int eo_table_dump(eo_table_t *t, const char *src, char **out);

static int eo_mkdir_p(const char *dir);
static int eo_path(char *buf, const char *dir, const char *file);
static int eo_fix_mode(const char *path, mode_t mode);
static int eo_lmdb_fail(eo_db_t *db, const char *what, int rc);
static int eo_db_open(eo_db_t *db, const char *dir, int mode,
    eo_opts_t *o);
static int eo_db_files(eo_db_t *db, eo_opts_t *o);
static void eo_db_close(eo_db_t *db);
static int eo_db_commit(eo_db_t *db);
static int eo_get(eo_db_t *db, int d, const char *key, MDB_val *val);
static int eo_put(eo_db_t *db, int d, const char *key, size_t klen,
    const char *val, size_t vlen);
static int eo_del(eo_db_t *db, int d, const char *key);
static int eo_meta_get(eo_db_t *db, const char *name, char *buf,
    size_t size);
static int eo_generation(eo_db_t *db, int d, uint64_t *gen);
static int eo_read_pairs(eo_db_t *db, int d, eo_pair_t **pairs,
    size_t *npairs);
static int eo_read_rules(eo_db_t *db, int d, eo_rule_t **rules,
    size_t *nrules);
static int eo_read_static(eo_db_t *db, eo_static_t **rules,
    size_t *nrules);
static int eo_table_read(eo_db_t *db, eo_table_t *t);
static int eo_table_write(eo_db_t *db, eo_table_t *t);
static int eo_write_begin(eo_db_t *db, eo_table_t *old, uint64_t *gen,
    char **dump, int replace);
static int eo_write_finish(eo_db_t *db, const char *op, uint64_t gen,
    const char *default_group, const char *dump);

static size_t eo_diff_pairs(const char *kind, eo_pair_t *a, size_t na,
    eo_pair_t *b, size_t nb);
static size_t eo_diff_rules(const char *kind, eo_rule_t *a, size_t na,
    eo_rule_t *b, size_t nb);
static size_t eo_diff_static(eo_static_t *a, size_t na, eo_static_t *b,
    size_t nb);
static size_t eo_diff(eo_table_t *a, eo_table_t *b);
static int eo_static_match(const char *dir, eo_table_t *t, const char *path,
    size_t *index);

static int eo_arg_name(const char *what, const char *s, int star);
static int eo_arg_key(eo_opts_t *o, const char *service, const char *region,
    char *key);
static int eo_parse_mapsize(const char *s, size_t *size);
static int eo_parse_owner(eo_opts_t *o);
static void eo_bad_option(const char *arg);

static int eo_cmd_compile(eo_opts_t *o);
static int eo_cmd_diff(eo_opts_t *o);
static int eo_cmd_dump(eo_opts_t *o);
static int eo_cmd_get(eo_opts_t *o);
static int eo_cmd_resolve(eo_opts_t *o);
static int eo_cmd_bypass(eo_opts_t *o);
static int eo_cmd_put(eo_opts_t *o);
static int eo_cmd_del(eo_opts_t *o);
static int eo_cmd_put_group(eo_opts_t *o);
static int eo_cmd_del_group(eo_opts_t *o);
static int eo_cmd_info(eo_opts_t *o);
static int eo_cmd_rollback(eo_opts_t *o);


static const char  *eo_db_names[EO_DB_N] = {
    "routes", "groups", "region_patterns", "devices", "static", "meta",
    "previous"
};


static const char  *eo_static_kinds[EO_STATIC_N] = {
    "exact", "prefix", "pattern"
};


static eo_command_t  eo_commands[] = {
    { "compile",   eo_cmd_compile,   2, EO_CMD_WRITE },
    { "diff",      eo_cmd_diff,      2, 0 },
    { "dump",      eo_cmd_dump,      1, 0 },
    { "get",       eo_cmd_get,       3, EO_CMD_KEY },
    { "resolve",   eo_cmd_resolve,   3, EO_CMD_KEY | EO_CMD_RESOLVE },
    { "bypass",    eo_cmd_bypass,    2, 0 },
    { "put",       eo_cmd_put,       4, EO_CMD_KEY | EO_CMD_WRITE },
    { "del",       eo_cmd_del,       3, EO_CMD_KEY | EO_CMD_WRITE },
    { "put-group", eo_cmd_put_group, 3, EO_CMD_WRITE },
    { "del-group", eo_cmd_del_group, 2, EO_CMD_WRITE },
    { "info",      eo_cmd_info,      1, 0 },
    { "rollback",  eo_cmd_rollback,  1, EO_CMD_WRITE },
    { NULL, NULL, 0, 0 }
};


static const char  eo_usage_text[] =
"usage: " EO_PROG " COMMAND ARGS... [OPTIONS]\n"
"\n"
"Compile, inspect and update the LMDB routing table of ngx_edge_orch_module\n"
"(see docs/routing-table.md).\n"
"\n"
"commands:\n"
"  compile FILE DIR          validate FILE (routes.json; \"-\" is stdin) and\n"
"                            replace the whole table in DIR atomically\n"
"  diff FILE DIR             print what compile would change; writes nothing\n"
"  dump DIR                  print the table as canonical JSON\n"
"  get DIR SERVICE REGION    print the upstream stored under that exact key\n"
"  resolve DIR SERVICE REGION\n"
"                            print the upstream nginx would choose and the\n"
"                            lookup chain it walks (REGION \"\" = default)\n"
"  bypass DIR PATH           print the static route matching PATH: nginx\n"
"                            sends such requests to edge_orch_bypass\n"
"  put DIR SERVICE REGION UPSTREAM\n"
"                            add or replace one route\n"
"  del DIR SERVICE REGION    delete one route\n"
"  put-group DIR REGION GROUP\n"
"                            map a region to a region group\n"
"  del-group DIR REGION      remove a region's group\n"
"  info DIR                  generation, last write, counts\n"
"  rollback DIR              restore the table saved before the last write\n"
"\n"
"options:\n"
"  --device CLASS            get/resolve/put/del: device class (default *)\n"
"  --bucket BUCKET           get/resolve/put/del: A/B bucket (default *)\n"
"  --ua USER_AGENT           resolve: classify the device by User-Agent\n"
"  -q, --quiet               resolve: print only the upstream\n"
"  --mapsize SIZE            writing commands: LMDB map size, suffix K/M/G\n"
"                            (default 64M, or the environment's if larger)\n"
"  --owner USER[:GROUP]      writing commands: chown DIR, data.mdb and\n"
"                            lock.mdb (nginx workers need to write lock.mdb)\n"
"  -h, --help                this text\n"
"\n"
"exit status: 0 success, 1 data or validation error, 2 usage error\n";


static struct option  eo_long_options[] = {
    { "device",  required_argument, NULL, 'd' },
    { "bucket",  required_argument, NULL, 'b' },
    { "ua",      required_argument, NULL, 'u' },
    { "mapsize", required_argument, NULL, 'm' },
    { "owner",   required_argument, NULL, 'o' },
    { "quiet",   no_argument,       NULL, 'q' },
    { "help",    no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};


static void
eo_err(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}


static void
eo_usage(FILE *f)
{
    fputs(eo_usage_text, f);
}


static int
eo_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || c == '_' || c == '.' || c == ':' || c == '-';
}


/*
 * Writes s as a double-quoted, escaped, possibly truncated string;
 * size must be at least 8.
 */

static char *
eo_quote(char *buf, size_t size, const char *s, size_t len)
{
    char           esc[8];
    size_t         i, n, elen;
    unsigned char  c;

    n = 0;
    buf[n++] = '"';

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char) c;
            elen = 2;

        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", (unsigned) c);
            elen = 4;

        } else {
            esc[0] = (char) c;
            elen = 1;
        }

        /* keep room for '...', '"' and NUL */
        if (n + elen + 5 > size) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }

        memcpy(buf + n, esc, elen);
        n += elen;
    }

    buf[n++] = '"';
    buf[n] = '\0';

    return buf;
}


static char *
eo_repr(char *buf, size_t size, json_t *v)
{
    switch (json_typeof(v)) {

    case JSON_STRING:
        return eo_quote(buf, size, json_string_value(v),
                        json_string_length(v));

    case JSON_INTEGER:
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;

    case JSON_REAL:
        snprintf(buf, size, "%.17g", json_real_value(v));
        break;

    case JSON_TRUE:
        snprintf(buf, size, "true");
        break;

    case JSON_FALSE:
        snprintf(buf, size, "false");
        break;

    case JSON_NULL:
        snprintf(buf, size, "null");
        break;

    case JSON_OBJECT:
        snprintf(buf, size, "an object");
        break;

    default: /* JSON_ARRAY */
        snprintf(buf, size, "an array");
        break;
    }

    return buf;
}


/* prints a NUL-free string as a JSON string literal */

static void
eo_print_string(const char *s)
{
    unsigned char  c;

    putchar('"');

    for ( /* void */ ; *s != '\0'; s++) {
        c = (unsigned char) *s;

        if (c == '"' || c == '\\') {
            putchar('\\');
            putchar(c);

        } else if (c < 0x20) {
            printf("\\u%04x", (unsigned) c);

        } else {
            putchar(c);
        }
    }

    putchar('"');
}


static int
eo_key_is(const char *key, size_t len, const char *name)
{
    return len == strlen(name) && memcmp(key, name, len) == 0;
}


/*
 * Validates a name: 1..64 bytes of [A-Za-z0-9_.:-], or "*" if star.
 * On error writes "must be ..., got ..." to err and returns -1.
 */

static int
eo_check_name(const char *s, size_t len, int star, char *err, size_t size)
{
    char         q[EO_QUOTE_LEN];
    size_t       i;
    const char  *alt;

    if (star && len == 1 && s[0] == '*') {
        return 0;
    }

    alt = star ? " or \"*\"" : "";

    if (len == 1 && s[0] == '*') {
        snprintf(err, size, "must be a string of " EO_NAME_CLASS ", got "
                 "\"*\" (\"*\" is not allowed here)");
        return -1;
    }

    if (len == 0) {
        snprintf(err, size, "must be 1..%d bytes of " EO_NAME_CLASS "%s, "
                 "got \"\"", EO_NAME_MAX, alt);
        return -1;
    }

    if (len > EO_NAME_MAX) {
        snprintf(err, size, "must be 1..%d bytes of " EO_NAME_CLASS "%s, "
                 "got %zu bytes: %s", EO_NAME_MAX, alt, len,
                 eo_quote(q, 80, s, len));
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (!eo_name_char((unsigned char) s[i])) {
            snprintf(err, size, "must be a string of " EO_NAME_CLASS "%s, "
                     "got %s (bad byte 0x%02x at offset %zu)", alt,
                     eo_quote(q, sizeof(q), s, len),
                     (unsigned) (unsigned char) s[i], i);
            return -1;
        }
    }

    return 0;
}


static int
eo_json_name(const char *src, const char *where, json_t *v, int star,
    char **out)
{
    char  err[EO_ERR_LEN], r[EO_QUOTE_LEN];

    if (!json_is_string(v)) {
        eo_err("%s: %s must be a string of " EO_NAME_CLASS "%s, got %s",
               src, where, star ? " or \"*\"" : "",
               eo_repr(r, sizeof(r), v));
        return EO_ERROR;
    }

    if (eo_check_name(json_string_value(v), json_string_length(v), star,
                      err, sizeof(err))
        != 0)
    {
        eo_err("%s: %s %s", src, where, err);
        return EO_ERROR;
    }

    *out = eo_strndup(json_string_value(v), json_string_length(v));
    if (*out == NULL) {
        return EO_ERROR;
    }

    return EO_OK;
}


static int
eo_check_pattern(const char *s, size_t len, char *err, size_t size)
{
    char         msg[256];
    const char  *nul;
    pcre2_code  *re;

    if (len == 0 || len > EO_PATTERN_MAX) {
        snprintf(err, size, "must be 1..%d bytes, got %zu bytes",
                 EO_PATTERN_MAX, len);
        return -1;
    }

    nul = memchr(s, '\0', len);
    if (nul != NULL) {
        snprintf(err, size, "must not contain NUL bytes, got one at offset "
                 "%zu", (size_t) (nul - s));
        return -1;
    }

    if (eo_regex_compile(s, &re, msg, sizeof(msg)) != 0) {
        snprintf(err, size, "%s", msg);
        return -1;
    }

    pcre2_code_free(re);

    return 0;
}


/*
 * Validates a static route path: 1..1024 bytes of visible ASCII
 * (0x21-0x7e), starting with "/".  On error writes "must ..." to err.
 */

static int
eo_check_path(const char *s, size_t len, char *err, size_t size)
{
    char    q[EO_QUOTE_LEN];
    size_t  i;

    if (len == 0 || len > EO_PATH_MAX) {
        snprintf(err, size, "must be 1..%d bytes, got %zu bytes",
                 EO_PATH_MAX, len);
        return -1;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e) {
            snprintf(err, size, "must be " EO_PATH_CLASS ", got %s (bad "
                     "byte 0x%02x at offset %zu)",
                     eo_quote(q, sizeof(q), s, len),
                     (unsigned) (unsigned char) s[i], i);
            return -1;
        }
    }

    if (s[0] != '/') {
        snprintf(err, size, "must start with \"/\", got %s",
                 eo_quote(q, sizeof(q), s, len));
        return -1;
    }

    return 0;
}


static int
eo_check_static(int kind, const char *s, size_t len, char *err, size_t size)
{
    if (kind == EO_STATIC_PATTERN) {
        return eo_check_pattern(s, len, err, size);
    }

    return eo_check_path(s, len, err, size);
}


/* "KIND VALUE" for messages: the value quoted, escaped, maybe truncated */

static char *
eo_static_repr(char *buf, size_t size, eo_static_t *r)
{
    char  q[EO_QUOTE_LEN];

    snprintf(buf, size, "%s %s", eo_static_kinds[r->kind],
             eo_quote(q, sizeof(q), r->value, strlen(r->value)));

    return buf;
}


/* "KIND VALUE" for output: paths as they are, patterns as JSON strings */

static void
eo_print_static(eo_static_t *r)
{
    printf("%s ", eo_static_kinds[r->kind]);

    if (r->kind == EO_STATIC_PATTERN) {
        eo_print_string(r->value);

    } else {
        fputs(r->value, stdout);
    }
}


/* the index of the first rule before i equal to rules[i], or i */

static size_t
eo_static_dup(eo_static_t *rules, size_t i)
{
    size_t  j;

    for (j = 0; j < i; j++) {
        if (rules[j].kind == rules[i].kind
            && strcmp(rules[j].value, rules[i].value) == 0)
        {
            return j;
        }
    }

    return i;
}


/* compiles the way nginx's ngx_regex_compile() does: no options */

static int
eo_regex_compile(const char *pattern, pcre2_code **re, char *err,
    size_t size)
{
    int          errcode;
    PCRE2_SIZE   erroff;
    PCRE2_UCHAR  msg[256];

    *re = pcre2_compile((PCRE2_SPTR) pattern, strlen(pattern), 0, &errcode,
                        &erroff, NULL);
    if (*re != NULL) {
        return 0;
    }

    if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0) {
        snprintf((char *) msg, sizeof(msg), "PCRE2 error %d", errcode);
    }

    snprintf(err, size, "does not compile at offset %zu: %s",
             (size_t) erroff, (char *) msg);

    return -1;
}


/* 1 match, 0 no match, -1 match error (treated as no match by callers) */

static int
eo_regex_match(pcre2_code *re, const char *subject)
{
    int                rc;
    pcre2_match_data  *md;

    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL) {
        return -1;
    }

    rc = pcre2_match(re, (PCRE2_SPTR) subject, strlen(subject), 0, 0, md,
                     NULL);

    pcre2_match_data_free(md);

    if (rc >= 0) {
        return 1;
    }

    return (rc == PCRE2_ERROR_NOMATCH) ? 0 : -1;
}


static char *
eo_strndup(const char *s, size_t len)
{
    char  *p;

    p = malloc(len + 1);
    if (p == NULL) {
        eo_err(EO_PROG ": out of memory");
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


static int
eo_parse_u64(const char *s, uint64_t *v)
{
    uint64_t  n;

    if (*s == '\0') {
        return -1;
    }

    for (n = 0; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }

        if (n > (UINT64_MAX - (uint64_t) (*s - '0')) / 10) {
            return -1;
        }

        n = n * 10 + (uint64_t) (*s - '0');
    }

    *v = n;

    return 0;
}


/* LMDB's default key order equals strcmp() order for NUL-free keys */

static int
eo_pair_cmp(const void *a, const void *b)
{
    int               rc;
    const eo_pair_t  *pa, *pb;

    pa = a;
    pb = b;

    rc = strcmp(pa->key, pb->key);
    if (rc != 0) {
        return rc;
    }

    return (pa->index > pb->index) - (pa->index < pb->index);
}


static int
eo_pair_find_cmp(const void *key, const void *elt)
{
    return strcmp(key, ((const eo_pair_t *) elt)->key);
}


static eo_pair_t *
eo_pair_find(eo_pair_t *pairs, size_t n, const char *key)
{
    if (n == 0) {
        return NULL;
    }

    return bsearch(key, pairs, n, sizeof(eo_pair_t), eo_pair_find_cmp);
}


/* buf must hold EO_KEY_LEN + 1 bytes; names are validated before */

static void
eo_route_key(char *buf, const char *service, const char *region,
    const char *device, const char *bucket)
{
    snprintf(buf, EO_KEY_LEN + 1, "%s|%s|%s|%s", service, region,
             device != NULL ? device : "*", bucket != NULL ? bucket : "*");
}


static int
eo_route_key_check(const char *key, size_t len, char *err, size_t size)
{
    int          field;
    char         ferr[EO_ERR_LEN / 2];
    size_t       flen;
    const char  *p, *end, *bar;
    static const char  *names[4] = { "service", "region", "device",
                                     "bucket" };

    p = key;
    end = key + len;

    for (field = 0; field < 4; field++) {
        bar = memchr(p, '|', (size_t) (end - p));

        if (field < 3 && bar == NULL) {
            snprintf(err, size, "has %d fields, expected 4", field + 1);
            return -1;
        }

        if (field == 3) {
            if (bar != NULL) {
                snprintf(err, size, "has more than 4 fields");
                return -1;
            }

            bar = end;
        }

        flen = (size_t) (bar - p);

        if (eo_check_name(p, flen, field > 0, ferr, sizeof(ferr)) != 0) {
            snprintf(err, size, "%s %s", names[field], ferr);
            return -1;
        }

        p = bar + 1;
    }

    return 0;
}


static void
eo_table_free(eo_table_t *t)
{
    size_t  i;

    free(t->default_group);

    for (i = 0; i < t->ngroups; i++) {
        free(t->groups[i].key);
        free(t->groups[i].value);
    }

    free(t->groups);

    for (i = 0; i < t->npatterns; i++) {
        free(t->patterns[i].name);
        free(t->patterns[i].pattern);
    }

    free(t->patterns);

    for (i = 0; i < t->ndevices; i++) {
        free(t->devices[i].name);
        free(t->devices[i].pattern);
    }

    free(t->devices);

    for (i = 0; i < t->nroutes; i++) {
        free(t->routes[i].key);
        free(t->routes[i].value);
    }

    free(t->routes);

    for (i = 0; i < t->nstatics; i++) {
        free(t->statics[i].value);
    }

    free(t->statics);

    memset(t, 0, sizeof(eo_table_t));
}


static int
eo_table_from_json(const char *src, json_t *root, eo_table_t *t)
{
    char         r[EO_QUOTE_LEN];
    void        *it;
    size_t       klen;
    json_t      *v, *schema, *dg, *groups, *patterns, *devices, *routes;
    json_t      *statics;
    const char  *key;

    if (!json_is_object(root)) {
        eo_err("%s: top level must be an object, got %s", src,
               eo_repr(r, sizeof(r), root));
        return EO_ERROR;
    }

    schema = dg = groups = patterns = devices = routes = statics = NULL;

    for (it = json_object_iter(root);
         it != NULL;
         it = json_object_iter_next(root, it))
    {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);
        v = json_object_iter_value(it);

        if (eo_key_is(key, klen, "schema")) {
            schema = v;

        } else if (eo_key_is(key, klen, "default_group")) {
            dg = v;

        } else if (eo_key_is(key, klen, "groups")) {
            groups = v;

        } else if (eo_key_is(key, klen, "region_patterns")) {
            patterns = v;

        } else if (eo_key_is(key, klen, "devices")) {
            devices = v;

        } else if (eo_key_is(key, klen, "routes")) {
            routes = v;

        } else if (eo_key_is(key, klen, "static")) {
            statics = v;

        } else {
            eo_err("%s: unknown top-level key %s (expected schema, "
                   "default_group, groups, region_patterns, devices, "
                   "routes, static)", src, eo_quote(r, sizeof(r), key, klen));
            return EO_ERROR;
        }
    }

    if (schema == NULL) {
        eo_err("%s: missing \"schema\" (must be 1)", src);
        return EO_ERROR;
    }

    if (!json_is_integer(schema) || json_integer_value(schema) != 1) {
        eo_err("%s: \"schema\" must be 1, got %s", src,
               eo_repr(r, sizeof(r), schema));
        return EO_ERROR;
    }

    if (dg != NULL
        && eo_json_name(src, "\"default_group\"", dg, 0, &t->default_group)
           != EO_OK)
    {
        return EO_ERROR;
    }

    if (groups != NULL && eo_parse_groups(src, groups, t) != EO_OK) {
        return EO_ERROR;
    }

    if (patterns != NULL
        && eo_parse_rules(src, "region_patterns", "group", patterns,
                          &t->patterns, &t->npatterns)
           != EO_OK)
    {
        return EO_ERROR;
    }

    if (devices != NULL
        && eo_parse_rules(src, "devices", "class", devices, &t->devices,
                          &t->ndevices)
           != EO_OK)
    {
        return EO_ERROR;
    }

    if (routes != NULL && eo_parse_routes(src, routes, t) != EO_OK) {
        return EO_ERROR;
    }

    if (statics != NULL && eo_parse_static(src, statics, t) != EO_OK) {
        return EO_ERROR;
    }

    return EO_OK;
}


static int
eo_parse_groups(const char *src, json_t *obj, eo_table_t *t)
{
    char         r[EO_QUOTE_LEN], where[EO_QUOTE_LEN + 16];
    char         err[EO_ERR_LEN];
    void        *it;
    size_t       n, i, klen;
    json_t      *v;
    eo_pair_t   *p;
    const char  *key;

    if (!json_is_object(obj)) {
        eo_err("%s: \"groups\" must be an object, got %s", src,
               eo_repr(r, sizeof(r), obj));
        return EO_ERROR;
    }

    n = json_object_size(obj);

    if (n > EO_GROUPS_MAX) {
        eo_err("%s: \"groups\" has %zu entries, at most %d are allowed",
               src, n, EO_GROUPS_MAX);
        return EO_ERROR;
    }

    t->groups = calloc(n + 1, sizeof(eo_pair_t));
    if (t->groups == NULL) {
        eo_err(EO_PROG ": out of memory");
        return EO_ERROR;
    }

    t->ngroups = n;
    i = 0;

    for (it = json_object_iter(obj);
         it != NULL && i < n;
         it = json_object_iter_next(obj, it), i++)
    {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);
        v = json_object_iter_value(it);
        p = &t->groups[i];

        if (eo_check_name(key, klen, 0, err, sizeof(err)) != 0) {
            eo_err("%s: groups: key %s", src, err);
            return EO_ERROR;
        }

        snprintf(where, sizeof(where), "groups[%s]",
                 eo_quote(r, sizeof(r), key, klen));

        if (eo_json_name(src, where, v, 0, &p->value) != EO_OK) {
            return EO_ERROR;
        }

        p->key = eo_strndup(key, klen);
        if (p->key == NULL) {
            return EO_ERROR;
        }

        p->index = i;
    }

    qsort(t->groups, n, sizeof(eo_pair_t), eo_pair_cmp);

    for (i = 1; i < n; i++) {
        if (strcmp(t->groups[i - 1].key, t->groups[i].key) == 0) {
            eo_err("%s: groups: duplicate region \"%s\" (entries %zu and "
                   "%zu)", src, t->groups[i].key, t->groups[i - 1].index,
                   t->groups[i].index);
            return EO_ERROR;
        }
    }

    return EO_OK;
}


static int
eo_parse_rules(const char *src, const char *kind, const char *field,
    json_t *arr, eo_rule_t **rules, size_t *nrules)
{
    char         r[EO_QUOTE_LEN], ctx[64], where[96], err[EO_ERR_LEN];
    void        *it;
    size_t       n, i, klen;
    json_t      *e, *v, *pattern, *name;
    eo_rule_t   *rule;
    const char  *key;

    if (!json_is_array(arr)) {
        eo_err("%s: \"%s\" must be an array, got %s", src, kind,
               eo_repr(r, sizeof(r), arr));
        return EO_ERROR;
    }

    n = json_array_size(arr);

    if (n > EO_RULES_MAX) {
        eo_err("%s: \"%s\" has %zu entries, at most %d are allowed", src,
               kind, n, EO_RULES_MAX);
        return EO_ERROR;
    }

    *rules = calloc(n + 1, sizeof(eo_rule_t));
    if (*rules == NULL) {
        eo_err(EO_PROG ": out of memory");
        return EO_ERROR;
    }

    *nrules = n;

    for (i = 0; i < n; i++) {
        e = json_array_get(arr, i);
        rule = &(*rules)[i];

        snprintf(ctx, sizeof(ctx), "%s[%zu]", kind, i);

        if (!json_is_object(e)) {
            eo_err("%s: %s: must be an object, got %s", src, ctx,
                   eo_repr(r, sizeof(r), e));
            return EO_ERROR;
        }

        pattern = name = NULL;

        for (it = json_object_iter(e);
             it != NULL;
             it = json_object_iter_next(e, it))
        {
            key = json_object_iter_key(it);
            klen = json_object_iter_key_len(it);
            v = json_object_iter_value(it);

            if (eo_key_is(key, klen, "pattern")) {
                pattern = v;

            } else if (eo_key_is(key, klen, field)) {
                name = v;

            } else {
                eo_err("%s: %s: unknown key %s (expected \"pattern\", "
                       "\"%s\")", src, ctx, eo_quote(r, sizeof(r), key, klen),
                       field);
                return EO_ERROR;
            }
        }

        if (pattern == NULL || name == NULL) {
            eo_err("%s: %s: missing \"%s\"", src, ctx,
                   pattern == NULL ? "pattern" : field);
            return EO_ERROR;
        }

        snprintf(where, sizeof(where), "%s: \"%s\"", ctx, field);

        if (eo_json_name(src, where, name, 0, &rule->name) != EO_OK) {
            return EO_ERROR;
        }

        if (!json_is_string(pattern)) {
            eo_err("%s: %s: \"pattern\" must be a string, got %s", src, ctx,
                   eo_repr(r, sizeof(r), pattern));
            return EO_ERROR;
        }

        if (eo_check_pattern(json_string_value(pattern),
                             json_string_length(pattern), err, sizeof(err))
            != 0)
        {
            eo_err("%s: %s: \"pattern\" %s", src, ctx, err);
            return EO_ERROR;
        }

        rule->pattern = eo_strndup(json_string_value(pattern),
                                   json_string_length(pattern));
        if (rule->pattern == NULL) {
            return EO_ERROR;
        }
    }

    return EO_OK;
}


static int
eo_parse_route(const char *src, size_t i, json_t *e, eo_pair_t *p)
{
    int          rc;
    char         r[EO_QUOTE_LEN], ctx[32], where[64];
    char        *f[4];
    void        *it;
    size_t       k, klen;
    json_t      *v, *field[5];
    const char  *key;
    static const char  *names[5] = { "service", "region", "device", "bucket",
                                     "upstream" };

    snprintf(ctx, sizeof(ctx), "routes[%zu]", i);

    if (!json_is_object(e)) {
        eo_err("%s: %s: must be an object, got %s", src, ctx,
               eo_repr(r, sizeof(r), e));
        return EO_ERROR;
    }

    memset(field, 0, sizeof(field));

    for (it = json_object_iter(e);
         it != NULL;
         it = json_object_iter_next(e, it))
    {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);
        v = json_object_iter_value(it);

        for (k = 0; k < 5; k++) {
            if (eo_key_is(key, klen, names[k])) {
                field[k] = v;
                break;
            }
        }

        if (k == 5) {
            eo_err("%s: %s: unknown key %s (expected \"service\", "
                   "\"region\", \"device\", \"bucket\", \"upstream\")",
                   src, ctx, eo_quote(r, sizeof(r), key, klen));
            return EO_ERROR;
        }
    }

    for (k = 0; k < 5; k++) {
        if (field[k] == NULL && (k == 0 || k == 1 || k == 4)) {
            eo_err("%s: %s: missing \"%s\"", src, ctx, names[k]);
            return EO_ERROR;
        }
    }

    memset(f, 0, sizeof(f));
    rc = EO_ERROR;

    for (k = 0; k < 4; k++) {
        if (field[k] == NULL) {
            continue;
        }

        snprintf(where, sizeof(where), "%s: \"%s\"", ctx, names[k]);

        if (eo_json_name(src, where, field[k], k > 0, &f[k]) != EO_OK) {
            goto done;
        }
    }

    snprintf(where, sizeof(where), "%s: \"upstream\"", ctx);

    if (eo_json_name(src, where, field[4], 0, &p->value) != EO_OK) {
        goto done;
    }

    p->key = malloc(EO_KEY_LEN + 1);
    if (p->key == NULL) {
        eo_err(EO_PROG ": out of memory");
        goto done;
    }

    eo_route_key(p->key, f[0], f[1], f[2], f[3]);
    p->index = i;

    rc = EO_OK;

done:

    for (k = 0; k < 4; k++) {
        free(f[k]);
    }

    return rc;
}


static int
eo_parse_routes(const char *src, json_t *arr, eo_table_t *t)
{
    char    r[EO_QUOTE_LEN];
    size_t  n, i;

    if (!json_is_array(arr)) {
        eo_err("%s: \"routes\" must be an array, got %s", src,
               eo_repr(r, sizeof(r), arr));
        return EO_ERROR;
    }

    n = json_array_size(arr);

    if (n > EO_ROUTES_MAX) {
        eo_err("%s: \"routes\" has %zu entries, at most %d are allowed",
               src, n, EO_ROUTES_MAX);
        return EO_ERROR;
    }

    t->routes = calloc(n + 1, sizeof(eo_pair_t));
    if (t->routes == NULL) {
        eo_err(EO_PROG ": out of memory");
        return EO_ERROR;
    }

    t->nroutes = n;

    for (i = 0; i < n; i++) {
        if (eo_parse_route(src, i, json_array_get(arr, i), &t->routes[i])
            != EO_OK)
        {
            return EO_ERROR;
        }
    }

    qsort(t->routes, n, sizeof(eo_pair_t), eo_pair_cmp);

    for (i = 1; i < n; i++) {
        if (strcmp(t->routes[i - 1].key, t->routes[i].key) == 0) {
            eo_err("%s: routes[%zu]: duplicate route %s (same key as "
                   "routes[%zu])", src, t->routes[i].index,
                   t->routes[i].key, t->routes[i - 1].index);
            return EO_ERROR;
        }
    }

    return EO_OK;
}


/* "static": [ { "exact" | "prefix" | "pattern": "..." }, ... ] */

static int
eo_parse_static(const char *src, json_t *arr, eo_table_t *t)
{
    int           k, kind;
    char          r[EO_QUOTE_LEN], ctx[32], err[EO_ERR_LEN];
    char          rep[EO_QUOTE_LEN + 16];
    void         *it;
    size_t        n, i, j, klen;
    json_t       *e, *v, *field[EO_STATIC_N];
    eo_static_t  *rule;
    const char   *key;

    if (!json_is_array(arr)) {
        eo_err("%s: \"static\" must be an array, got %s", src,
               eo_repr(r, sizeof(r), arr));
        return EO_ERROR;
    }

    n = json_array_size(arr);

    if (n > EO_STATIC_MAX) {
        eo_err("%s: \"static\" has %zu entries, at most %d are allowed",
               src, n, EO_STATIC_MAX);
        return EO_ERROR;
    }

    t->statics = calloc(n + 1, sizeof(eo_static_t));
    if (t->statics == NULL) {
        eo_err(EO_PROG ": out of memory");
        return EO_ERROR;
    }

    for (i = 0; i < n; i++) {
        e = json_array_get(arr, i);

        snprintf(ctx, sizeof(ctx), "static[%zu]", i);

        if (!json_is_object(e)) {
            eo_err("%s: %s: must be an object, got %s", src, ctx,
                   eo_repr(r, sizeof(r), e));
            return EO_ERROR;
        }

        memset(field, 0, sizeof(field));

        for (it = json_object_iter(e);
             it != NULL;
             it = json_object_iter_next(e, it))
        {
            key = json_object_iter_key(it);
            klen = json_object_iter_key_len(it);
            v = json_object_iter_value(it);

            for (k = 0; k < EO_STATIC_N; k++) {
                if (eo_key_is(key, klen, eo_static_kinds[k])) {
                    field[k] = v;
                    break;
                }
            }

            if (k == EO_STATIC_N) {
                eo_err("%s: %s: unknown key %s (expected \"exact\", "
                       "\"prefix\", \"pattern\")", src, ctx,
                       eo_quote(r, sizeof(r), key, klen));
                return EO_ERROR;
            }
        }

        /* exactly one kind; name the first two in the order of kinds */

        kind = -1;

        for (k = 0; k < EO_STATIC_N; k++) {
            if (field[k] == NULL) {
                continue;
            }

            if (kind >= 0) {
                eo_err("%s: %s: both \"%s\" and \"%s\" given (expected "
                       "exactly one of \"exact\", \"prefix\", "
                       "\"pattern\")", src, ctx, eo_static_kinds[kind],
                       eo_static_kinds[k]);
                return EO_ERROR;
            }

            kind = k;
        }

        if (kind < 0) {
            eo_err("%s: %s: missing \"exact\", \"prefix\" or "
                   "\"pattern\"", src, ctx);
            return EO_ERROR;
        }

        v = field[kind];

        if (!json_is_string(v)) {
            eo_err("%s: %s: \"%s\" must be a string, got %s", src, ctx,
                   eo_static_kinds[kind], eo_repr(r, sizeof(r), v));
            return EO_ERROR;
        }

        if (eo_check_static(kind, json_string_value(v),
                            json_string_length(v), err, sizeof(err))
            != 0)
        {
            eo_err("%s: %s: \"%s\" %s", src, ctx, eo_static_kinds[kind],
                   err);
            return EO_ERROR;
        }

        rule = &t->statics[i];
        rule->kind = kind;
        rule->value = eo_strndup(json_string_value(v),
                                 json_string_length(v));
        if (rule->value == NULL) {
            return EO_ERROR;
        }

        t->nstatics = i + 1;

        j = eo_static_dup(t->statics, i);

        if (j != i) {
            eo_err("%s: %s: duplicate static rule %s (same as static[%zu])",
                   src, ctx, eo_static_repr(rep, sizeof(rep), rule), j);
            return EO_ERROR;
        }
    }

    return EO_OK;
}


static int
eo_table_load(const char *src, const char *buf, size_t len, eo_table_t *t)
{
    int           rc;
    json_t       *root;
    json_error_t  error;

    root = json_loadb(buf, len, EO_JSON_LOAD, &error);

    if (root == NULL) {
        if (error.line > 0) {
            eo_err("%s:%d:%d: %s", src, error.line, error.column,
                   error.text);

        } else {
            eo_err("%s: %s", src, error.text);
        }

        return EO_ERROR;
    }

    rc = eo_table_from_json(src, root, t);

    json_decref(root);

    if (rc != EO_OK) {
        eo_table_free(t);
    }

    return rc;
}


static int
eo_table_load_file(const char *path, eo_table_t *t)
{
    int     rc, err;
    char   *buf, *p;
    FILE   *f;
    size_t  len, size, n;

    if (strcmp(path, "-") == 0) {
        f = stdin;
        path = "<stdin>";

    } else {
        f = fopen(path, "r");
        if (f == NULL) {
            eo_err("%s: cannot open: %s", path, strerror(errno));
            return EO_ERROR;
        }
    }

    buf = NULL;
    len = 0;
    size = 0;
    rc = EO_ERROR;

    for ( ;; ) {
        if (len == size) {
            if (size >= EO_FILE_MAX) {
                eo_err("%s: larger than %zu bytes", path, EO_FILE_MAX);
                goto done;
            }

            size = size ? size * 2 : 65536;

            p = realloc(buf, size);
            if (p == NULL) {
                eo_err(EO_PROG ": out of memory");
                goto done;
            }

            buf = p;
        }

        n = fread(buf + len, 1, size - len, f);
        len += n;

        if (n == 0) {
            break;
        }
    }

    if (ferror(f)) {
        err = errno;
        eo_err("%s: cannot read: %s", path, strerror(err));
        goto done;
    }

    rc = eo_table_load(path, buf, len, t);

done:

    free(buf);

    if (f != stdin && fclose(f) != 0 && rc == EO_OK) {
        eo_err("%s: cannot close: %s", path, strerror(errno));
        eo_table_free(t);
        rc = EO_ERROR;
    }

    return rc;
}


/* the canonical dump: also what "previous" stores */

static int
eo_table_dump(eo_table_t *t, const char *src, char **out)
{
    int      rc;
    char    *s, *f[4], *p, *key;
    size_t   i, j, len;
    json_t  *root, *groups, *patterns, *devices, *routes, *statics, *e, *v;

    root = json_object();
    groups = json_object();
    patterns = json_array();
    devices = json_array();
    routes = json_array();
    key = NULL;
    rc = EO_ERROR;

    if (root == NULL || groups == NULL || patterns == NULL || devices == NULL
        || routes == NULL)
    {
        json_decref(groups);
        json_decref(patterns);
        json_decref(devices);
        json_decref(routes);
        goto oom;
    }

    if (json_object_set_new(root, "schema", json_integer(1)) != 0) {
        json_decref(groups);
        json_decref(patterns);
        json_decref(devices);
        json_decref(routes);
        goto oom;
    }

    if (t->default_group != NULL
        && json_object_set_new(root, "default_group",
                               json_string(t->default_group))
           != 0)
    {
        json_decref(groups);
        json_decref(patterns);
        json_decref(devices);
        json_decref(routes);
        goto oom;
    }

    /* set_new steals the reference even on failure */

    if (json_object_set_new(root, "groups", groups) != 0
        || json_object_set_new(root, "region_patterns", patterns) != 0
        || json_object_set_new(root, "devices", devices) != 0
        || json_object_set_new(root, "routes", routes) != 0)
    {
        goto oom;
    }

    for (i = 0; i < t->ngroups; i++) {
        if (json_object_set_new(groups, t->groups[i].key,
                                json_string(t->groups[i].value))
            != 0)
        {
            goto oom;
        }
    }

    for (i = 0; i < t->npatterns + t->ndevices; i++) {
        e = json_object();
        if (e == NULL) {
            goto oom;
        }

        if (json_array_append_new(i < t->npatterns ? patterns : devices, e)
            != 0)
        {
            goto oom;
        }

        if (i < t->npatterns) {
            v = json_string(t->patterns[i].pattern);

            if (v == NULL) {
                eo_err("%s: region_patterns[%zu]: pattern is not valid "
                       "UTF-8", src, i);
                goto done;
            }

            if (json_object_set_new(e, "pattern", v) != 0
                || json_object_set_new(e, "group",
                                       json_string(t->patterns[i].name))
                   != 0)
            {
                goto oom;
            }

        } else {
            v = json_string(t->devices[i - t->npatterns].pattern);

            if (v == NULL) {
                eo_err("%s: devices[%zu]: pattern is not valid UTF-8", src,
                       i - t->npatterns);
                goto done;
            }

            if (json_object_set_new(e, "pattern", v) != 0
                || json_object_set_new(e, "class",
                       json_string(t->devices[i - t->npatterns].name))
                   != 0)
            {
                goto oom;
            }
        }
    }

    for (i = 0; i < t->nroutes; i++) {
        free(key);

        key = eo_strndup(t->routes[i].key, strlen(t->routes[i].key));
        if (key == NULL) {
            goto done;
        }

        /* keys are validated: exactly 4 fields */

        f[0] = key;

        for (j = 1; j < 4; j++) {
            p = strchr(f[j - 1], '|');

            if (p == NULL) {
                eo_err("%s: corrupt route key \"%s\"", src,
                       t->routes[i].key);
                goto done;
            }

            *p = '\0';
            f[j] = p + 1;
        }

        e = json_object();
        if (e == NULL) {
            goto oom;
        }

        if (json_array_append_new(routes, e) != 0
            || json_object_set_new(e, "service", json_string(f[0])) != 0
            || json_object_set_new(e, "region", json_string(f[1])) != 0)
        {
            goto oom;
        }

        if (strcmp(f[2], "*") != 0
            && json_object_set_new(e, "device", json_string(f[2])) != 0)
        {
            goto oom;
        }

        if (strcmp(f[3], "*") != 0
            && json_object_set_new(e, "bucket", json_string(f[3])) != 0)
        {
            goto oom;
        }

        if (json_object_set_new(e, "upstream",
                                json_string(t->routes[i].value))
            != 0)
        {
            goto oom;
        }
    }

    /* "static" comes last and only when there is any */

    if (t->nstatics > 0) {
        statics = json_array();

        if (json_object_set_new(root, "static", statics) != 0) {
            goto oom;
        }

        for (i = 0; i < t->nstatics; i++) {
            e = json_object();
            if (e == NULL) {
                goto oom;
            }

            if (json_array_append_new(statics, e) != 0) {
                goto oom;
            }

            v = json_string(t->statics[i].value);

            if (v == NULL) {
                eo_err("%s: static[%zu]: %s is not valid UTF-8", src, i,
                       eo_static_kinds[t->statics[i].kind]);
                goto done;
            }

            if (json_object_set_new(e, eo_static_kinds[t->statics[i].kind],
                                    v)
                != 0)
            {
                goto oom;
            }
        }
    }

    s = json_dumps(root, EO_JSON_DUMP);
    if (s == NULL) {
        goto oom;
    }

    len = strlen(s);

    *out = malloc(len + 2);
    if (*out == NULL) {
        free(s);
        goto oom;
    }

    memcpy(*out, s, len);
    (*out)[len] = '\n';
    (*out)[len + 1] = '\0';

    free(s);

    rc = EO_OK;
    goto done;

oom:

    eo_err(EO_PROG ": out of memory building the JSON dump");

done:

    free(key);
    json_decref(root);

    return rc;
}


static int
eo_mkdir_p(const char *dir)
{
    char    path[PATH_MAX];
    char   *p;
    size_t  len;

    len = strlen(dir);

    if (len == 0 || len >= sizeof(path)) {
        eo_err("%s: bad directory name", dir);
        return EO_ERROR;
    }

    memcpy(path, dir, len + 1);

    for (p = path + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }

        *p = '\0';

        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            eo_err("%s: cannot create directory: %s", path, strerror(errno));
            return EO_ERROR;
        }

        *p = '/';
    }

    if (mkdir(path, 0755) != 0) {
        if (errno == EEXIST) {
            return EO_OK;
        }

        eo_err("%s: cannot create directory: %s", path, strerror(errno));
        return EO_ERROR;
    }

    /* the umask may have removed bits */

    if (chmod(path, 0755) != 0) {
        eo_err("%s: cannot chmod: %s", path, strerror(errno));
        return EO_ERROR;
    }

    return EO_OK;
}


static int
eo_path(char *buf, const char *dir, const char *file)
{
    int  n;

    n = snprintf(buf, PATH_MAX, "%s/%s", dir, file);

    if (n < 0 || n >= PATH_MAX) {
        eo_err("%s: path too long", dir);
        return EO_ERROR;
    }

    return EO_OK;
}


static int
eo_fix_mode(const char *path, mode_t mode)
{
    struct stat  st;

    if (stat(path, &st) != 0) {
        eo_err("%s: cannot stat: %s", path, strerror(errno));
        return EO_ERROR;
    }

    if ((st.st_mode & 07777) == mode) {
        return EO_OK;
    }

    if (chmod(path, mode) != 0) {
        eo_err("%s: cannot chmod %04o: %s", path, (unsigned) mode,
               strerror(errno));
        return EO_ERROR;
    }

    return EO_OK;
}


static int
eo_lmdb_fail(eo_db_t *db, const char *what, int rc)
{
    eo_err("%s: %s: %s%s", db->dir, what, mdb_strerror(rc),
           rc == MDB_MAP_FULL ? " (retry with a larger --mapsize)" : "");

    return EO_ERROR;
}


/*
 * Opens DIR and begins one transaction: read-only for EO_DB_READ, the
 * write transaction otherwise.  EO_DB_CREATE creates DIR and the table.
 */

static int
eo_db_open(eo_db_t *db, const char *dir, int mode, eo_opts_t *o)
{
    int           rc, d, dead;
    char          path[PATH_MAX], buf[EO_META_LEN];
    MDB_dbi       main;
    MDB_stat      ms;
    MDB_envinfo   info;
    struct stat   st;

    memset(db, 0, sizeof(eo_db_t));
    db->dir = dir;

    if ((mode & EO_DB_CREATE) && eo_mkdir_p(dir) != EO_OK) {
        return EO_ERROR;
    }

    if (stat(dir, &st) != 0) {
        eo_err("%s: no routing table here: %s", dir, strerror(errno));
        return EO_ERROR;
    }

    if (!S_ISDIR(st.st_mode)) {
        eo_err("%s: not a directory", dir);
        return EO_ERROR;
    }

    if (eo_path(path, dir, "data.mdb") != EO_OK) {
        return EO_ERROR;
    }

    /* never leave a stray lock.mdb in a directory that is not a table */

    if (!(mode & EO_DB_CREATE) && stat(path, &st) != 0) {
        eo_err("%s: not a routing table (%s: %s)", dir, path,
               strerror(errno));
        return EO_ERROR;
    }

    rc = mdb_env_create(&db->env);
    if (rc != 0) {
        db->env = NULL;
        return eo_lmdb_fail(db, "mdb_env_create", rc);
    }

    rc = mdb_env_set_maxdbs(db->env, EO_MAXDBS);
    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_env_set_maxdbs", rc);
    }

    if (o->mapsize) {
        rc = mdb_env_set_mapsize(db->env, o->mapsize);
        if (rc != 0) {
            return eo_lmdb_fail(db, "mdb_env_set_mapsize", rc);
        }
    }

    rc = mdb_env_open(db->env, dir,
                      MDB_NOTLS | ((mode & EO_DB_WRITE) ? 0 : MDB_RDONLY),
                      0664);
    if (rc != 0) {
        return eo_lmdb_fail(db, "cannot open the LMDB environment", rc);
    }

    if (mode & EO_DB_WRITE) {
        if (!o->mapsize) {
            rc = mdb_env_info(db->env, &info);
            if (rc != 0) {
                return eo_lmdb_fail(db, "mdb_env_info", rc);
            }

            if (info.me_mapsize < EO_MAPSIZE) {
                rc = mdb_env_set_mapsize(db->env, EO_MAPSIZE);
                if (rc != 0) {
                    return eo_lmdb_fail(db, "mdb_env_set_mapsize", rc);
                }
            }
        }

        rc = mdb_reader_check(db->env, &dead);
        if (rc != 0) {
            return eo_lmdb_fail(db, "mdb_reader_check", rc);
        }

        if (eo_db_files(db, o) != EO_OK) {
            return EO_ERROR;
        }
    }

    rc = mdb_txn_begin(db->env, NULL,
                       (mode & EO_DB_WRITE) ? 0 : MDB_RDONLY, &db->txn);
    if (rc != 0) {
        db->txn = NULL;
        return eo_lmdb_fail(db, "mdb_txn_begin", rc);
    }

    rc = mdb_dbi_open(db->txn, "meta", 0, &db->dbi[EO_DB_META]);

    if (rc == MDB_NOTFOUND) {
        if (!(mode & EO_DB_WRITE)) {
            eo_err("%s: not a routing table (no \"meta\" database)", dir);
            return EO_ERROR;
        }

        /* a fresh environment, or someone else's: refuse the latter */

        rc = mdb_dbi_open(db->txn, NULL, 0, &main);
        if (rc != 0) {
            return eo_lmdb_fail(db, "mdb_dbi_open", rc);
        }

        rc = mdb_stat(db->txn, main, &ms);
        if (rc != 0) {
            return eo_lmdb_fail(db, "mdb_stat", rc);
        }

        if (ms.ms_entries > 0) {
            eo_err("%s: this LMDB environment is not a routing table "
                   "(no \"meta\" database); refusing to write to it", dir);
            return EO_ERROR;
        }

    } else if (rc != 0) {
        return eo_lmdb_fail(db, "cannot open database \"meta\"", rc);

    } else {
        rc = eo_meta_get(db, "schema", buf, sizeof(buf));

        /* "meta" was opened above without have[]; mark it */
        db->have[EO_DB_META] = 1;

        if (rc < 0) {
            return EO_ERROR;
        }

        if (rc > 0 || strcmp(buf, EO_SCHEMA) != 0) {
            eo_err("%s: unsupported table schema \"%s\" (this tool writes "
                   "schema " EO_SCHEMA ")", dir, rc > 0 ? "" : buf);
            return EO_ERROR;
        }
    }

    for (d = 0; d < EO_DB_N; d++) {
        rc = mdb_dbi_open(db->txn, eo_db_names[d],
                          (mode & EO_DB_WRITE) ? MDB_CREATE : 0,
                          &db->dbi[d]);

        if (rc == MDB_NOTFOUND && !(mode & EO_DB_WRITE)) {
            continue;
        }

        if (rc != 0) {
            eo_err("%s: cannot open database \"%s\": %s", dir,
                   eo_db_names[d], mdb_strerror(rc));
            return EO_ERROR;
        }

        db->have[d] = 1;
    }

    return EO_OK;
}


/* modes and ownership of DIR, data.mdb and lock.mdb for the writer */

static int
eo_db_files(eo_db_t *db, eo_opts_t *o)
{
    int          i;
    char         path[3][PATH_MAX];
    static const mode_t  modes[3] = { 0, 0644, 0664 };

    if (eo_path(path[1], db->dir, "data.mdb") != EO_OK
        || eo_path(path[2], db->dir, "lock.mdb") != EO_OK)
    {
        return EO_ERROR;
    }

    snprintf(path[0], PATH_MAX, "%s", db->dir);

    for (i = 1; i < 3; i++) {
        if (eo_fix_mode(path[i], modes[i]) != EO_OK) {
            return EO_ERROR;
        }
    }

    if (o->owner == NULL) {
        return EO_OK;
    }

    for (i = 0; i < 3; i++) {
        if (chown(path[i], o->uid, o->gid) != 0) {
            eo_err("%s: cannot chown to %s: %s", path[i], o->owner,
                   strerror(errno));
            return EO_ERROR;
        }
    }

    return EO_OK;
}


static void
eo_db_close(eo_db_t *db)
{
    if (db->txn != NULL) {
        mdb_txn_abort(db->txn);
        db->txn = NULL;
    }

    if (db->env != NULL) {
        mdb_env_close(db->env);
        db->env = NULL;
    }
}


static int
eo_db_commit(eo_db_t *db)
{
    int  rc;

    rc = mdb_txn_commit(db->txn);
    db->txn = NULL;

    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_txn_commit", rc);
    }

    return EO_OK;
}


/* EO_OK, MDB_NOTFOUND (silently), or EO_ERROR (reported) */

static int
eo_get(eo_db_t *db, int d, const char *key, MDB_val *val)
{
    int      rc;
    MDB_val  k;

    if (!db->have[d]) {
        return MDB_NOTFOUND;
    }

    k.mv_size = strlen(key);
    k.mv_data = (void *) key;

    rc = mdb_get(db->txn, db->dbi[d], &k, val);

    if (rc == MDB_NOTFOUND) {
        return MDB_NOTFOUND;
    }

    if (rc != 0) {
        eo_err("%s: mdb_get(%s, \"%s\"): %s", db->dir, eo_db_names[d], key,
               mdb_strerror(rc));
        return EO_ERROR;
    }

    return EO_OK;
}


static int
eo_put(eo_db_t *db, int d, const char *key, size_t klen, const char *val,
    size_t vlen)
{
    int      rc;
    MDB_val  k, v;

    k.mv_size = klen;
    k.mv_data = (void *) key;
    v.mv_size = vlen;
    v.mv_data = (void *) val;

    rc = mdb_put(db->txn, db->dbi[d], &k, &v, 0);
    if (rc != 0) {
        eo_err("%s: mdb_put(%s): %s%s", db->dir, eo_db_names[d],
               mdb_strerror(rc),
               rc == MDB_MAP_FULL ? " (retry with a larger --mapsize)" : "");
        return EO_ERROR;
    }

    return EO_OK;
}


static int
eo_del(eo_db_t *db, int d, const char *key)
{
    int      rc;
    MDB_val  k;

    k.mv_size = strlen(key);
    k.mv_data = (void *) key;

    rc = mdb_del(db->txn, db->dbi[d], &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        eo_err("%s: mdb_del(%s): %s", db->dir, eo_db_names[d],
               mdb_strerror(rc));
        return EO_ERROR;
    }

    return EO_OK;
}


/* 0 found (NUL-terminated in buf), 1 absent, -1 error (reported) */

static int
eo_meta_get(eo_db_t *db, const char *name, char *buf, size_t size)
{
    int      rc;
    MDB_val  k, v;

    k.mv_size = strlen(name);
    k.mv_data = (void *) name;

    rc = mdb_get(db->txn, db->dbi[EO_DB_META], &k, &v);

    if (rc == MDB_NOTFOUND) {
        buf[0] = '\0';
        return 1;
    }

    if (rc != 0) {
        eo_err("%s: mdb_get(meta, \"%s\"): %s", db->dir, name,
               mdb_strerror(rc));
        return -1;
    }

    if (v.mv_size >= size || memchr(v.mv_data, '\0', v.mv_size) != NULL) {
        eo_err("%s: corrupt table: meta \"%s\" is not a short text value",
               db->dir, name);
        return -1;
    }

    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';

    return 0;
}


/* "generation" of meta or previous; 0 if absent */

static int
eo_generation(eo_db_t *db, int d, uint64_t *gen)
{
    int      rc;
    char     buf[EO_META_LEN];
    MDB_val  v;

    *gen = 0;

    rc = eo_get(db, d, "generation", &v);

    if (rc == MDB_NOTFOUND) {
        return EO_OK;
    }

    if (rc != EO_OK) {
        return EO_ERROR;
    }

    if (v.mv_size >= sizeof(buf)) {
        goto corrupt;
    }

    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';

    if (eo_parse_u64(buf, gen) != 0) {
        goto corrupt;
    }

    return EO_OK;

corrupt:

    eo_err("%s: corrupt table: %s \"generation\" is not a decimal number",
           db->dir, eo_db_names[d]);

    return EO_ERROR;
}


static int
eo_read_pairs(eo_db_t *db, int d, eo_pair_t **pairs, size_t *npairs)
{
    int          rc, op;
    char         q[EO_QUOTE_LEN], err[EO_ERR_LEN];
    size_t       n;
    MDB_val      k, v;
    MDB_stat     ms;
    eo_pair_t   *p;
    MDB_cursor  *cur;

    *pairs = NULL;
    *npairs = 0;

    if (!db->have[d]) {
        return EO_OK;
    }

    rc = mdb_stat(db->txn, db->dbi[d], &ms);
    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_stat", rc);
    }

    *pairs = calloc(ms.ms_entries + 1, sizeof(eo_pair_t));
    if (*pairs == NULL) {
        eo_err(EO_PROG ": out of memory");
        return EO_ERROR;
    }

    rc = mdb_cursor_open(db->txn, db->dbi[d], &cur);
    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_cursor_open", rc);
    }

    n = 0;

    for (op = MDB_FIRST; ; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &k, &v, op);

        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != 0) {
            eo_lmdb_fail(db, "mdb_cursor_get", rc);
            goto failed;
        }

        if (n == ms.ms_entries) {
            eo_err("%s: corrupt table: %s has more entries than counted",
                   db->dir, eo_db_names[d]);
            goto failed;
        }

        if (d == EO_DB_ROUTES) {
            rc = eo_route_key_check(k.mv_data, k.mv_size, err, sizeof(err));

        } else {
            rc = eo_check_name(k.mv_data, k.mv_size, 0, err, sizeof(err));
        }

        if (rc != 0) {
            eo_err("%s: corrupt table: %s key %s: %s", db->dir,
                   eo_db_names[d], eo_quote(q, sizeof(q), k.mv_data,
                                            k.mv_size), err);
            goto failed;
        }

        if (eo_check_name(v.mv_data, v.mv_size, 0, err, sizeof(err)) != 0) {
            eo_err("%s: corrupt table: %s %s: value %s", db->dir,
                   eo_db_names[d], eo_quote(q, sizeof(q), k.mv_data,
                                            k.mv_size), err);
            goto failed;
        }

        p = &(*pairs)[n];

        p->key = eo_strndup(k.mv_data, k.mv_size);
        p->value = eo_strndup(v.mv_data, v.mv_size);
        p->index = n;
        n++;

        if (p->key == NULL || p->value == NULL) {
            goto failed;
        }
    }

    mdb_cursor_close(cur);
    *npairs = n;

    return EO_OK;

failed:

    mdb_cursor_close(cur);
    *npairs = n;

    return EO_ERROR;
}


static int
eo_read_rules(eo_db_t *db, int d, eo_rule_t **rules, size_t *nrules)
{
    int          rc, op;
    char         q[EO_QUOTE_LEN], err[EO_ERR_LEN], num[24];
    size_t       n, nlen;
    MDB_val      k, v;
    MDB_stat     ms;
    eo_rule_t   *r;
    MDB_cursor  *cur;
    const char  *nl;

    *rules = NULL;
    *nrules = 0;

    if (!db->have[d]) {
        return EO_OK;
    }

    rc = mdb_stat(db->txn, db->dbi[d], &ms);
    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_stat", rc);
    }

    *rules = calloc(ms.ms_entries + 1, sizeof(eo_rule_t));
    if (*rules == NULL) {
        eo_err(EO_PROG ": out of memory");
        return EO_ERROR;
    }

    rc = mdb_cursor_open(db->txn, db->dbi[d], &cur);
    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_cursor_open", rc);
    }

    n = 0;

    for (op = MDB_FIRST; ; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &k, &v, op);

        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != 0) {
            eo_lmdb_fail(db, "mdb_cursor_get", rc);
            goto failed;
        }

        if (n == ms.ms_entries || n > 9999) {
            eo_err("%s: corrupt table: %s has more entries than counted",
                   db->dir, eo_db_names[d]);
            goto failed;
        }

        snprintf(num, sizeof(num), "%04zu", n);

        if (k.mv_size != 4 || memcmp(k.mv_data, num, 4) != 0) {
            eo_err("%s: corrupt table: %s key %s, expected \"%s\"", db->dir,
                   eo_db_names[d], eo_quote(q, sizeof(q), k.mv_data,
                                            k.mv_size), num);
            goto failed;
        }

        nl = memchr(v.mv_data, '\n', v.mv_size);
        if (nl == NULL) {
            eo_err("%s: corrupt table: %s \"%s\": no newline after the "
                   "name", db->dir, eo_db_names[d], num);
            goto failed;
        }

        nlen = (size_t) (nl - (const char *) v.mv_data);

        if (eo_check_name(v.mv_data, nlen, 0, err, sizeof(err)) != 0) {
            eo_err("%s: corrupt table: %s \"%s\": name %s", db->dir,
                   eo_db_names[d], num, err);
            goto failed;
        }

        if (eo_check_pattern(nl + 1, v.mv_size - nlen - 1, err, sizeof(err))
            != 0)
        {
            eo_err("%s: corrupt table: %s \"%s\": pattern %s", db->dir,
                   eo_db_names[d], num, err);
            goto failed;
        }

        r = &(*rules)[n];

        r->name = eo_strndup(v.mv_data, nlen);
        r->pattern = eo_strndup(nl + 1, v.mv_size - nlen - 1);
        n++;

        if (r->name == NULL || r->pattern == NULL) {
            goto failed;
        }
    }

    mdb_cursor_close(cur);
    *nrules = n;

    return EO_OK;

failed:

    mdb_cursor_close(cur);
    *nrules = n;

    return EO_ERROR;
}


/*
 * "static": keys "0000", "0001", ..., values "KIND\nVALUE".  A table
 * written before static routes existed has no such database: no rules.
 */

static int
eo_read_static(eo_db_t *db, eo_static_t **rules, size_t *nrules)
{
    int           rc, op, kind;
    char          q[EO_QUOTE_LEN], err[EO_ERR_LEN], num[24];
    char          rep[EO_QUOTE_LEN + 16];
    size_t        n, j, klen, vlen;
    MDB_val       k, v;
    MDB_stat      ms;
    MDB_cursor   *cur;
    eo_static_t  *r;
    const char   *nl;

    *rules = NULL;
    *nrules = 0;

    if (!db->have[EO_DB_STATIC]) {
        return EO_OK;
    }

    rc = mdb_stat(db->txn, db->dbi[EO_DB_STATIC], &ms);
    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_stat", rc);
    }

    *rules = calloc(ms.ms_entries + 1, sizeof(eo_static_t));
    if (*rules == NULL) {
        eo_err(EO_PROG ": out of memory");
        return EO_ERROR;
    }

    rc = mdb_cursor_open(db->txn, db->dbi[EO_DB_STATIC], &cur);
    if (rc != 0) {
        return eo_lmdb_fail(db, "mdb_cursor_open", rc);
    }

    n = 0;

    for (op = MDB_FIRST; ; op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &k, &v, op);

        if (rc == MDB_NOTFOUND) {
            break;
        }

        if (rc != 0) {
            eo_lmdb_fail(db, "mdb_cursor_get", rc);
            goto failed;
        }

        if (n == ms.ms_entries || n > 9999) {
            eo_err("%s: corrupt table: static has more entries than "
                   "counted", db->dir);
            goto failed;
        }

        snprintf(num, sizeof(num), "%04zu", n);

        if (k.mv_size != 4 || memcmp(k.mv_data, num, 4) != 0) {
            eo_err("%s: corrupt table: static key %s, expected \"%s\"",
                   db->dir, eo_quote(q, sizeof(q), k.mv_data, k.mv_size),
                   num);
            goto failed;
        }

        /* the kind ends at the first newline; a pattern may have more */

        nl = memchr(v.mv_data, '\n', v.mv_size);
        if (nl == NULL) {
            eo_err("%s: corrupt table: static \"%s\": no newline after the "
                   "kind", db->dir, num);
            goto failed;
        }

        klen = (size_t) (nl - (const char *) v.mv_data);
        vlen = v.mv_size - klen - 1;

        for (kind = 0; kind < EO_STATIC_N; kind++) {
            if (eo_key_is(v.mv_data, klen, eo_static_kinds[kind])) {
                break;
            }
        }

        if (kind == EO_STATIC_N) {
            eo_err("%s: corrupt table: static \"%s\": unknown kind %s "
                   "(expected exact, prefix or pattern)", db->dir, num,
                   eo_quote(q, sizeof(q), v.mv_data, klen));
            goto failed;
        }

        if (eo_check_static(kind, nl + 1, vlen, err, sizeof(err)) != 0) {
            eo_err("%s: corrupt table: static \"%s\": %s %s", db->dir, num,
                   eo_static_kinds[kind], err);
            goto failed;
        }

        r = &(*rules)[n];

        r->kind = kind;
        r->value = eo_strndup(nl + 1, vlen);
        n++;

        if (r->value == NULL) {
            goto failed;
        }

        /* compile refuses duplicates: so does every reader of the CLI */

        j = eo_static_dup(*rules, n - 1);

        if (j != n - 1) {
            eo_err("%s: corrupt table: static \"%s\": duplicate of "
                   "\"%04zu\" (%s)", db->dir, num, j,
                   eo_static_repr(rep, sizeof(rep), r));
            goto failed;
        }
    }

    mdb_cursor_close(cur);
    *nrules = n;

    return EO_OK;

failed:

    mdb_cursor_close(cur);
    *nrules = n;

    return EO_ERROR;
}


static int
eo_table_read(eo_db_t *db, eo_table_t *t)
{
    int   rc;
    char  buf[EO_META_LEN], err[EO_ERR_LEN];

    memset(t, 0, sizeof(eo_table_t));

    if (db->have[EO_DB_META]) {
        rc = eo_meta_get(db, "default_group", buf, sizeof(buf));

        if (rc < 0) {
            return EO_ERROR;
        }

        if (rc == 0) {
            if (eo_check_name(buf, strlen(buf), 0, err, sizeof(err)) != 0) {
                eo_err("%s: corrupt table: meta \"default_group\" %s",
                       db->dir, err);
                return EO_ERROR;
            }

            t->default_group = eo_strndup(buf, strlen(buf));
            if (t->default_group == NULL) {
                return EO_ERROR;
            }
        }
    }

    if (eo_read_pairs(db, EO_DB_GROUPS, &t->groups, &t->ngroups) != EO_OK
        || eo_read_pairs(db, EO_DB_ROUTES, &t->routes, &t->nroutes) != EO_OK
        || eo_read_rules(db, EO_DB_PATTERNS, &t->patterns, &t->npatterns)
           != EO_OK
        || eo_read_rules(db, EO_DB_DEVICES, &t->devices, &t->ndevices)
           != EO_OK
        || eo_read_static(db, &t->statics, &t->nstatics) != EO_OK)
    {
        eo_table_free(t);
        return EO_ERROR;
    }

    return EO_OK;
}


/* replaces the five data databases inside the write transaction */

static int
eo_table_write(eo_db_t *db, eo_table_t *t)
{
    int           rc, d;
    char          num[24];
    size_t        i, n, nlen, plen;
    MDB_val       k, v;
    eo_rule_t    *rules;
    const char   *kind;
    static const int  data[5] = { EO_DB_ROUTES, EO_DB_GROUPS,
                                  EO_DB_PATTERNS, EO_DB_DEVICES,
                                  EO_DB_STATIC };

    for (i = 0; i < 5; i++) {
        rc = mdb_drop(db->txn, db->dbi[data[i]], 0);
        if (rc != 0) {
            return eo_lmdb_fail(db, "mdb_drop", rc);
        }
    }

    for (i = 0; i < t->nroutes; i++) {
        if (eo_put(db, EO_DB_ROUTES, t->routes[i].key,
                   strlen(t->routes[i].key), t->routes[i].value,
                   strlen(t->routes[i].value))
            != EO_OK)
        {
            return EO_ERROR;
        }
    }

    for (i = 0; i < t->ngroups; i++) {
        if (eo_put(db, EO_DB_GROUPS, t->groups[i].key,
                   strlen(t->groups[i].key), t->groups[i].value,
                   strlen(t->groups[i].value))
            != EO_OK)
        {
            return EO_ERROR;
        }
    }

    for (d = EO_DB_PATTERNS; d <= EO_DB_DEVICES; d++) {
        rules = (d == EO_DB_PATTERNS) ? t->patterns : t->devices;
        n = (d == EO_DB_PATTERNS) ? t->npatterns : t->ndevices;

        for (i = 0; i < n; i++) {
            snprintf(num, sizeof(num), "%04zu", i);

            nlen = strlen(rules[i].name);
            plen = strlen(rules[i].pattern);

            k.mv_size = 4;
            k.mv_data = num;
            v.mv_size = nlen + 1 + plen;

            rc = mdb_put(db->txn, db->dbi[d], &k, &v, MDB_RESERVE);
            if (rc != 0) {
                return eo_lmdb_fail(db, "mdb_put", rc);
            }

            memcpy(v.mv_data, rules[i].name, nlen);
            ((char *) v.mv_data)[nlen] = '\n';
            memcpy((char *) v.mv_data + nlen + 1, rules[i].pattern, plen);
        }
    }

    /* "KIND\nVALUE", in table order */

    for (i = 0; i < t->nstatics; i++) {
        snprintf(num, sizeof(num), "%04zu", i);

        kind = eo_static_kinds[t->statics[i].kind];
        nlen = strlen(kind);
        plen = strlen(t->statics[i].value);

        k.mv_size = 4;
        k.mv_data = num;
        v.mv_size = nlen + 1 + plen;

        rc = mdb_put(db->txn, db->dbi[EO_DB_STATIC], &k, &v, MDB_RESERVE);
        if (rc != 0) {
            return eo_lmdb_fail(db, "mdb_put", rc);
        }

        memcpy(v.mv_data, kind, nlen);
        ((char *) v.mv_data)[nlen] = '\n';
        memcpy((char *) v.mv_data + nlen + 1, t->statics[i].value, plen);
    }

    return EO_OK;
}


/*
 * Reads the current generation, table and dump in the write txn.
 * "replace" (compile, rollback) goes on over an unreadable current table,
 * so that compiling a good file repairs it; it is then not saved.
 */

static int
eo_write_begin(eo_db_t *db, eo_table_t *old, uint64_t *gen, char **dump,
    int replace)
{
    *dump = NULL;

    if (eo_generation(db, EO_DB_META, gen) != EO_OK) {
        return EO_ERROR;
    }

    if (eo_table_read(db, old) != EO_OK) {
        goto unreadable;
    }

    /* a fresh environment has no previous table */

    if (*gen > 0 && eo_table_dump(old, db->dir, dump) != EO_OK) {
        eo_table_free(old);
        goto unreadable;
    }

    return EO_OK;

unreadable:

    if (!replace) {
        return EO_ERROR;
    }

    eo_err("%s: warning: replacing an unreadable table; it is not saved "
           "as the previous table", db->dir);

    return EO_OK;
}


static int
eo_write_finish(eo_db_t *db, const char *op, uint64_t gen,
    const char *default_group, const char *dump)
{
    int   rc;
    char  buf[32];

    if (gen == UINT64_MAX) {
        eo_err("%s: generation counter overflow", db->dir);
        return EO_ERROR;
    }

    snprintf(buf, sizeof(buf), "%" PRIu64, gen + 1);

    if (eo_put(db, EO_DB_META, "schema", 6, EO_SCHEMA, strlen(EO_SCHEMA))
        != EO_OK
        || eo_put(db, EO_DB_META, "generation", 10, buf, strlen(buf))
           != EO_OK
        || eo_put(db, EO_DB_META, "op", 2, op, strlen(op)) != EO_OK)
    {
        return EO_ERROR;
    }

    snprintf(buf, sizeof(buf), "%lld", (long long) time(NULL));

    if (eo_put(db, EO_DB_META, "updated_at", 10, buf, strlen(buf))
        != EO_OK)
    {
        return EO_ERROR;
    }

    if (default_group != NULL) {
        rc = eo_put(db, EO_DB_META, "default_group", 13, default_group,
                    strlen(default_group));

    } else {
        rc = eo_del(db, EO_DB_META, "default_group");
    }

    if (rc != EO_OK) {
        return EO_ERROR;
    }

    if (dump == NULL) {
        rc = mdb_drop(db->txn, db->dbi[EO_DB_PREVIOUS], 0);
        if (rc != 0) {
            return eo_lmdb_fail(db, "mdb_drop", rc);
        }

        return EO_OK;
    }

    snprintf(buf, sizeof(buf), "%" PRIu64, gen);

    if (eo_put(db, EO_DB_PREVIOUS, "table", 5, dump, strlen(dump)) != EO_OK
        || eo_put(db, EO_DB_PREVIOUS, "generation", 10, buf, strlen(buf))
           != EO_OK)
    {
        return EO_ERROR;
    }

    return EO_OK;
}


static size_t
eo_diff_pairs(const char *kind, eo_pair_t *a, size_t na, eo_pair_t *b,
    size_t nb)
{
    int     rc;
    size_t  i, j, n;

    i = 0;
    j = 0;
    n = 0;

    while (i < na || j < nb) {
        if (i == na) {
            rc = 1;

        } else if (j == nb) {
            rc = -1;

        } else {
            rc = strcmp(a[i].key, b[j].key);
        }

        if (rc < 0) {
            printf("- %s %s -> %s\n", kind, a[i].key, a[i].value);
            i++;
            n++;

        } else if (rc > 0) {
            printf("+ %s %s -> %s\n", kind, b[j].key, b[j].value);
            j++;
            n++;

        } else {
            if (strcmp(a[i].value, b[j].value) != 0) {
                printf("~ %s %s %s -> %s\n", kind, a[i].key, a[i].value,
                       b[j].value);
                n++;
            }

            i++;
            j++;
        }
    }

    return n;
}


static size_t
eo_diff_rules(const char *kind, eo_rule_t *a, size_t na, eo_rule_t *b,
    size_t nb)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < na || i < nb; i++) {
        if (i >= nb) {
            printf("- %s[%zu] -> %s ", kind, i, a[i].name);
            eo_print_string(a[i].pattern);

        } else if (i >= na) {
            printf("+ %s[%zu] -> %s ", kind, i, b[i].name);
            eo_print_string(b[i].pattern);

        } else if (strcmp(a[i].name, b[i].name) != 0
                   || strcmp(a[i].pattern, b[i].pattern) != 0)
        {
            printf("~ %s[%zu] %s ", kind, i, a[i].name);
            eo_print_string(a[i].pattern);
            printf(" -> %s ", b[i].name);
            eo_print_string(b[i].pattern);

        } else {
            continue;
        }

        putchar('\n');
        n++;
    }

    return n;
}


/* an ordered list like the rules: compared by position */

static size_t
eo_diff_static(eo_static_t *a, size_t na, eo_static_t *b, size_t nb)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < na || i < nb; i++) {
        if (i >= nb) {
            printf("- static[%zu] ", i);
            eo_print_static(&a[i]);

        } else if (i >= na) {
            printf("+ static[%zu] ", i);
            eo_print_static(&b[i]);

        } else if (a[i].kind != b[i].kind
                   || strcmp(a[i].value, b[i].value) != 0)
        {
            printf("~ static[%zu] ", i);
            eo_print_static(&a[i]);
            printf(" -> ");
            eo_print_static(&b[i]);

        } else {
            continue;
        }

        putchar('\n');
        n++;
    }

    return n;
}


static size_t
eo_diff(eo_table_t *a, eo_table_t *b)
{
    size_t  n;

    n = 0;

    if (a->default_group != NULL && b->default_group == NULL) {
        printf("- default_group -> %s\n", a->default_group);
        n++;

    } else if (a->default_group == NULL && b->default_group != NULL) {
        printf("+ default_group -> %s\n", b->default_group);
        n++;

    } else if (a->default_group != NULL
               && strcmp(a->default_group, b->default_group) != 0)
    {
        printf("~ default_group %s -> %s\n", a->default_group,
               b->default_group);
        n++;
    }

    n += eo_diff_pairs("group", a->groups, a->ngroups, b->groups,
                       b->ngroups);
    n += eo_diff_rules("region_pattern", a->patterns, a->npatterns,
                       b->patterns, b->npatterns);
    n += eo_diff_rules("device", a->devices, a->ndevices, b->devices,
                       b->ndevices);
    n += eo_diff_pairs("route", a->routes, a->nroutes, b->routes,
                       b->nroutes);
    n += eo_diff_static(a->statics, a->nstatics, b->statics, b->nstatics);

    return n;
}


/*
 * The static rule nginx applies to a request path (docs/routing-table.md,
 * "Static routes"): an "exact" rule equal to the path; else the longest
 * "prefix" rule the path starts with; else the first "pattern" rule, in
 * table order, that matches the path (unanchored).  Byte comparisons, so
 * case-sensitive.  1 found (*index set), 0 none, -1 error (reported).
 */

static int
eo_static_match(const char *dir, eo_table_t *t, const char *path,
    size_t *index)
{
    int           m;
    char          err[EO_ERR_LEN];
    size_t        i, len, plen, best;
    pcre2_code   *re;
    eo_static_t  *r;

    len = strlen(path);

    for (i = 0; i < t->nstatics; i++) {
        r = &t->statics[i];

        if (r->kind == EO_STATIC_EXACT && strcmp(r->value, path) == 0) {
            *index = i;
            return 1;
        }
    }

    /* two matching prefixes of equal length are equal: duplicates */

    best = 0;

    for (i = 0; i < t->nstatics; i++) {
        r = &t->statics[i];

        if (r->kind != EO_STATIC_PREFIX) {
            continue;
        }

        plen = strlen(r->value);

        if (plen <= len && plen > best && memcmp(r->value, path, plen) == 0)
        {
            best = plen;
            *index = i;
        }
    }

    if (best > 0) {
        return 1;
    }

    for (i = 0; i < t->nstatics; i++) {
        r = &t->statics[i];

        if (r->kind != EO_STATIC_PATTERN) {
            continue;
        }

        if (eo_regex_compile(r->value, &re, err, sizeof(err)) != 0) {
            eo_err("%s: static[%zu]: pattern %s", dir, i, err);
            return -1;
        }

        m = eo_regex_match(re, path);
        pcre2_code_free(re);

        if (m < 0) {
            eo_err("%s: static[%zu]: match error, treated as no match", dir,
                   i);
        }

        if (m > 0) {
            *index = i;
            return 1;
        }
    }

    return 0;
}


static int
eo_arg_name(const char *what, const char *s, int star)
{
    char  err[EO_ERR_LEN];

    if (eo_check_name(s, strlen(s), star, err, sizeof(err)) != 0) {
        eo_err(EO_PROG ": %s %s", what, err);
        return EO_USAGE;
    }

    return EO_OK;
}


/* validates SERVICE REGION --device --bucket and builds the route key */

static int
eo_arg_key(eo_opts_t *o, const char *service, const char *region,
    char *key)
{
    if (eo_arg_name("SERVICE", service, 0) != EO_OK
        || eo_arg_name("REGION", region, 1) != EO_OK
        || (o->device != NULL
            && eo_arg_name("--device", o->device, 1) != EO_OK)
        || (o->bucket != NULL
            && eo_arg_name("--bucket", o->bucket, 1) != EO_OK))
    {
        return EO_USAGE;
    }

    eo_route_key(key, service, region, o->device, o->bucket);

    return EO_OK;
}


static int
eo_parse_mapsize(const char *s, size_t *size)
{
    char                *end;
    long                 page;
    unsigned long long   n, mul;

    errno = 0;
    n = strtoull(s, &end, 10);

    if (errno != 0 || end == s || *s == '-') {
        return -1;
    }

    mul = 1;

    if (*end != '\0') {
        switch (*end) {
        case 'k': case 'K':
            mul = 1ULL << 10;
            break;
        case 'm': case 'M':
            mul = 1ULL << 20;
            break;
        case 'g': case 'G':
            mul = 1ULL << 30;
            break;
        default:
            return -1;
        }

        if (end[1] != '\0') {
            return -1;
        }
    }

    if (n > (unsigned long long) SIZE_MAX / mul) {
        return -1;
    }

    n *= mul;

    if (n < EO_MAPSIZE_MIN) {
        return -1;
    }

    page = sysconf(_SC_PAGESIZE);
    if (page > 0) {
        n = (n + (unsigned long long) page - 1)
            / (unsigned long long) page * (unsigned long long) page;
    }

    *size = (size_t) n;

    return 0;
}


static int
eo_parse_owner(eo_opts_t *o)
{
    char           *copy, *user, *group, *end;
    unsigned long   id;
    struct group   *gr;
    struct passwd  *pw;
    int             rc;

    o->uid = (uid_t) -1;
    o->gid = (gid_t) -1;

    copy = eo_strndup(o->owner, strlen(o->owner));
    if (copy == NULL) {
        return EO_ERROR;
    }

    rc = EO_USAGE;
    user = copy;
    group = strchr(copy, ':');

    if (group != NULL) {
        *group++ = '\0';
    }

    if (*user == '\0' && (group == NULL || *group == '\0')) {
        eo_err(EO_PROG ": --owner needs USER, USER:GROUP or :GROUP");
        goto done;
    }

    if (*user != '\0') {
        errno = 0;
        pw = getpwnam(user);

        if (pw != NULL) {
            o->uid = pw->pw_uid;

        } else {
            errno = 0;
            id = strtoul(user, &end, 10);

            if (errno != 0 || *end != '\0' || user[0] < '0' || user[0] > '9'
                || id >= (unsigned long) (uid_t) -1)
            {
                eo_err(EO_PROG ": --owner: unknown user \"%s\"", user);
                goto done;
            }

            o->uid = (uid_t) id;
        }
    }

    if (group != NULL && *group != '\0') {
        gr = getgrnam(group);

        if (gr != NULL) {
            o->gid = gr->gr_gid;

        } else {
            errno = 0;
            id = strtoul(group, &end, 10);

            if (errno != 0 || *end != '\0' || group[0] < '0'
                || group[0] > '9' || id >= (unsigned long) (gid_t) -1)
            {
                eo_err(EO_PROG ": --owner: unknown group \"%s\"", group);
                goto done;
            }

            o->gid = (gid_t) id;
        }
    }

    rc = EO_OK;

done:

    free(copy);

    return rc;
}


static void
eo_bad_option(const char *arg)
{
    struct option  *opt;

    for (opt = eo_long_options; opt->name != NULL; opt++) {
        if (optopt != 0 && optopt == opt->val) {
            if (opt->has_arg == required_argument) {
                eo_err(EO_PROG ": option --%s needs an argument", opt->name);

            } else {
                eo_err(EO_PROG ": option --%s takes no argument", opt->name);
            }

            return;
        }
    }

    if (optopt != 0) {
        eo_err(EO_PROG ": unknown option -%c", optopt);
        return;
    }

    eo_err(EO_PROG ": unknown option %s", arg);
}


static int
eo_cmd_compile(eo_opts_t *o)
{
    int          rc;
    char        *dump;
    uint64_t     gen;
    eo_db_t      db;
    eo_table_t   t, old;

    memset(&t, 0, sizeof(eo_table_t));
    memset(&old, 0, sizeof(eo_table_t));
    dump = NULL;

    if (eo_table_load_file(o->arg[0], &t) != EO_OK) {
        return EO_ERROR;
    }

    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[1], EO_DB_WRITE | EO_DB_CREATE, o) != EO_OK
        || eo_write_begin(&db, &old, &gen, &dump, 1) != EO_OK
        || eo_table_write(&db, &t) != EO_OK
        || eo_write_finish(&db, "compile", gen, t.default_group, dump)
           != EO_OK
        || eo_db_commit(&db) != EO_OK)
    {
        goto done;
    }

    printf("compiled %zu routes, %zu groups, %zu patterns, %zu device "
           "rules, %zu static rules: generation %" PRIu64 " -> %" PRIu64
           "\n", t.nroutes, t.ngroups, t.npatterns, t.ndevices, t.nstatics,
           gen, gen + 1);

    rc = EO_OK;

done:

    eo_db_close(&db);
    free(dump);
    eo_table_free(&t);
    eo_table_free(&old);

    return rc;
}


static int
eo_cmd_diff(eo_opts_t *o)
{
    int          rc;
    char         path[PATH_MAX];
    eo_db_t      db;
    eo_table_t   t, old;
    struct stat  st;

    memset(&t, 0, sizeof(eo_table_t));
    memset(&old, 0, sizeof(eo_table_t));
    memset(&db, 0, sizeof(eo_db_t));

    if (eo_table_load_file(o->arg[0], &t) != EO_OK) {
        return EO_ERROR;
    }

    rc = EO_ERROR;

    if (eo_path(path, o->arg[1], "data.mdb") != EO_OK) {
        goto done;
    }

    /* compile would create a missing table: diff against an empty one */

    if (stat(path, &st) == 0 || errno != ENOENT) {
        if (eo_db_open(&db, o->arg[1], EO_DB_READ, o) != EO_OK
            || eo_table_read(&db, &old) != EO_OK)
        {
            goto done;
        }
    }

    if (eo_diff(&old, &t) == 0) {
        printf("no changes\n");
    }

    rc = EO_OK;

done:

    eo_db_close(&db);
    eo_table_free(&t);
    eo_table_free(&old);

    return rc;
}


static int
eo_cmd_dump(eo_opts_t *o)
{
    int          rc;
    char        *dump;
    eo_db_t      db;
    eo_table_t   t;

    memset(&t, 0, sizeof(eo_table_t));
    dump = NULL;
    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_READ, o) != EO_OK
        || eo_table_read(&db, &t) != EO_OK
        || eo_table_dump(&t, o->arg[0], &dump) != EO_OK)
    {
        goto done;
    }

    fputs(dump, stdout);
    rc = EO_OK;

done:

    eo_db_close(&db);
    eo_table_free(&t);
    free(dump);

    return rc;
}


static int
eo_cmd_get(eo_opts_t *o)
{
    int       rc;
    char      key[EO_KEY_LEN + 1];
    MDB_val   v;
    eo_db_t   db;

    rc = eo_arg_key(o, o->arg[1], o->arg[2], key);
    if (rc != EO_OK) {
        return rc;
    }

    if (eo_db_open(&db, o->arg[0], EO_DB_READ, o) != EO_OK) {
        eo_db_close(&db);
        return EO_ERROR;
    }

    rc = eo_get(&db, EO_DB_ROUTES, key, &v);

    if (rc == EO_OK) {
        fwrite(v.mv_data, 1, v.mv_size, stdout);
        putchar('\n');

    } else {
        if (rc == MDB_NOTFOUND) {
            eo_err("%s: no route %s", o->arg[0], key);
        }

        rc = EO_ERROR;
    }

    eo_db_close(&db);

    return rc;
}


static int
eo_cmd_resolve(eo_opts_t *o)
{
    int           rc, m;
    char          key[EO_KEY_LEN + 1], err[EO_ERR_LEN];
    size_t        i, r, c, nregions;
    eo_db_t       db;
    eo_pair_t    *p;
    eo_table_t    t;
    pcre2_code   *re;
    const char   *region, *group, *device, *bucket, *service;
    const char   *regions[3], *combo[4][2];

    service = o->arg[1];
    region = (o->arg[2][0] == '\0') ? "default" : o->arg[2];
    device = o->device;
    bucket = o->bucket;

    if (device != NULL && strcmp(device, "*") == 0) {
        device = NULL;
    }

    if (bucket != NULL && strcmp(bucket, "*") == 0) {
        bucket = NULL;
    }

    rc = eo_arg_key(o, service, region, key);
    if (rc != EO_OK) {
        return rc;
    }

    memset(&t, 0, sizeof(eo_table_t));

    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_READ, o) != EO_OK
        || eo_table_read(&db, &t) != EO_OK)
    {
        eo_db_close(&db);
        return EO_ERROR;
    }

    eo_db_close(&db);

    if (!o->quiet) {
        printf("region: %s%s\n", region,
               o->arg[2][0] == '\0' ? " (empty region)" : "");
    }

    /* the region group */

    group = NULL;
    p = eo_pair_find(t.groups, t.ngroups, region);

    if (p != NULL) {
        group = p->value;

        if (!o->quiet) {
            printf("group: %s (groups[\"%s\"])\n", group, region);
        }
    }

    for (i = 0; group == NULL && i < t.npatterns; i++) {
        if (eo_regex_compile(t.patterns[i].pattern, &re, err, sizeof(err))
            != 0)
        {
            eo_err("%s: region_patterns[%zu]: pattern %s", o->arg[0], i, err);
            goto done;
        }

        m = eo_regex_match(re, region);
        pcre2_code_free(re);

        if (m < 0) {
            eo_err("%s: region_patterns[%zu]: match error, treated as no "
                   "match", o->arg[0], i);
        }

        if (m > 0) {
            group = t.patterns[i].name;

            if (!o->quiet) {
                printf("group: %s (region_patterns[%zu] ", group, i);
                eo_print_string(t.patterns[i].pattern);
                printf(")\n");
            }
        }
    }

    if (group == NULL && t.default_group != NULL) {
        group = t.default_group;

        if (!o->quiet) {
            printf("group: %s (default_group)\n", group);
        }
    }

    if (group == NULL && !o->quiet) {
        printf("group: none\n");
    }

    /* the device class */

    if (device != NULL) {
        if (!o->quiet) {
            printf("device: %s (given)\n", device);
        }

    } else if (o->ua != NULL) {
        for (i = 0; device == NULL && i < t.ndevices; i++) {
            if (eo_regex_compile(t.devices[i].pattern, &re, err,
                                 sizeof(err))
                != 0)
            {
                eo_err("%s: devices[%zu]: pattern %s", o->arg[0], i, err);
                goto done;
            }

            m = eo_regex_match(re, o->ua);
            pcre2_code_free(re);

            if (m < 0) {
                eo_err("%s: devices[%zu]: match error, treated as no match",
                       o->arg[0], i);
            }

            if (m > 0) {
                device = t.devices[i].name;

                if (!o->quiet) {
                    printf("device: %s (devices[%zu] ", device, i);
                    eo_print_string(t.devices[i].pattern);
                    printf(" matched the User-Agent)\n");
                }
            }
        }

        if (device == NULL && !o->quiet) {
            printf("device: none (no device pattern matched the "
                   "User-Agent)\n");
        }

    } else if (!o->quiet) {
        printf("device: none\n");
    }

    if (!o->quiet) {
        printf("bucket: %s%s\n", bucket != NULL ? bucket : "none",
               bucket != NULL ? " (given)" : "");
    }

    /* region candidates: R, G (if any and != R), "*" */

    nregions = 0;
    regions[nregions++] = region;

    if (group != NULL && strcmp(group, region) != 0) {
        regions[nregions++] = group;
    }

    if (strcmp(region, "*") != 0) {
        regions[nregions++] = "*";
    }

    /* (D,B), (D,*), (*,B), (*,*), skipping those needing absent D or B */

    c = 0;

    if (device != NULL && bucket != NULL) {
        combo[c][0] = device;
        combo[c++][1] = bucket;
    }

    if (device != NULL) {
        combo[c][0] = device;
        combo[c++][1] = "*";
    }

    if (bucket != NULL) {
        combo[c][0] = "*";
        combo[c++][1] = bucket;
    }

    combo[c][0] = "*";
    combo[c++][1] = "*";

    for (r = 0; r < nregions; r++) {
        for (i = 0; i < c; i++) {
            eo_route_key(key, service, regions[r], combo[i][0],
                         combo[i][1]);

            p = eo_pair_find(t.routes, t.nroutes, key);

            if (!o->quiet) {
                printf("try %s: %s\n", key, p != NULL ? "hit" : "miss");
            }

            if (p != NULL) {
                printf(o->quiet ? "%s\n" : "upstream: %s\n", p->value);
                rc = EO_OK;
                goto done;
            }
        }
    }

    if (o->quiet) {
        eo_err("%s: no route for service %s, region %s", o->arg[0], service,
               region);

    } else {
        printf("no route\n");
    }

done:

    eo_table_free(&t);

    return rc;
}


static int
eo_cmd_bypass(eo_opts_t *o)
{
    int          rc;
    char         q[EO_QUOTE_LEN];
    size_t       i;
    eo_db_t      db;
    eo_table_t   t;
    const char  *path;

    path = o->arg[1];

    /* nginx's $uri always starts with "/"; anything else is a mistake */

    if (path[0] != '/') {
        eo_err(EO_PROG ": PATH must start with \"/\", got %s",
               eo_quote(q, sizeof(q), path, strlen(path)));
        return EO_USAGE;
    }

    memset(&t, 0, sizeof(eo_table_t));

    if (eo_db_open(&db, o->arg[0], EO_DB_READ, o) != EO_OK
        || eo_table_read(&db, &t) != EO_OK)
    {
        eo_db_close(&db);
        return EO_ERROR;
    }

    eo_db_close(&db);

    rc = eo_static_match(o->arg[0], &t, path, &i);

    if (rc > 0) {
        printf("static: ");
        eo_print_static(&t.statics[i]);
        printf(" (static[%zu])\n", i);
        rc = EO_OK;

    } else {
        if (rc == 0) {
            printf("not static\n");
        }

        rc = EO_ERROR;
    }

    eo_table_free(&t);

    return rc;
}


static int
eo_cmd_put(eo_opts_t *o)
{
    int          rc;
    char         key[EO_KEY_LEN + 1];
    char        *dump;
    size_t       n;
    uint64_t     gen;
    eo_db_t      db;
    eo_pair_t   *p;
    eo_table_t   old;

    rc = eo_arg_key(o, o->arg[1], o->arg[2], key);
    if (rc != EO_OK) {
        return rc;
    }

    rc = eo_arg_name("UPSTREAM", o->arg[3], 0);
    if (rc != EO_OK) {
        return rc;
    }

    memset(&old, 0, sizeof(eo_table_t));
    dump = NULL;
    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_WRITE | EO_DB_CREATE, o) != EO_OK
        || eo_write_begin(&db, &old, &gen, &dump, 0) != EO_OK)
    {
        goto done;
    }

    p = eo_pair_find(old.routes, old.nroutes, key);
    n = old.nroutes;

    if (p == NULL && n >= EO_ROUTES_MAX) {
        eo_err("%s: the table already has %zu routes, at most %d are "
               "allowed", o->arg[0], n, EO_ROUTES_MAX);
        goto done;
    }

    if (eo_put(&db, EO_DB_ROUTES, key, strlen(key), o->arg[3],
               strlen(o->arg[3]))
        != EO_OK
        || eo_write_finish(&db, "put", gen, old.default_group, dump) != EO_OK
        || eo_db_commit(&db) != EO_OK)
    {
        goto done;
    }

    printf("put route %s -> %s (%s%s): generation %" PRIu64 " -> %" PRIu64
           "\n", key, o->arg[3], p != NULL ? "was " : "new",
           p != NULL ? p->value : "", gen, gen + 1);

    rc = EO_OK;

done:

    eo_db_close(&db);
    eo_table_free(&old);
    free(dump);

    return rc;
}


static int
eo_cmd_del(eo_opts_t *o)
{
    int          rc;
    char         key[EO_KEY_LEN + 1];
    char        *dump;
    uint64_t     gen;
    eo_db_t      db;
    eo_pair_t   *p;
    eo_table_t   old;

    rc = eo_arg_key(o, o->arg[1], o->arg[2], key);
    if (rc != EO_OK) {
        return rc;
    }

    memset(&old, 0, sizeof(eo_table_t));
    dump = NULL;
    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_WRITE, o) != EO_OK
        || eo_write_begin(&db, &old, &gen, &dump, 0) != EO_OK)
    {
        goto done;
    }

    p = eo_pair_find(old.routes, old.nroutes, key);

    if (p == NULL) {
        eo_err("%s: no route %s", o->arg[0], key);
        goto done;
    }

    if (eo_del(&db, EO_DB_ROUTES, key) != EO_OK
        || eo_write_finish(&db, "del", gen, old.default_group, dump) != EO_OK
        || eo_db_commit(&db) != EO_OK)
    {
        goto done;
    }

    printf("deleted route %s (was %s): generation %" PRIu64 " -> %" PRIu64
           "\n", key, p->value, gen, gen + 1);

    rc = EO_OK;

done:

    eo_db_close(&db);
    eo_table_free(&old);
    free(dump);

    return rc;
}


static int
eo_cmd_put_group(eo_opts_t *o)
{
    int          rc;
    char        *dump;
    uint64_t     gen;
    eo_db_t      db;
    eo_pair_t   *p;
    eo_table_t   old;

    if (eo_arg_name("REGION", o->arg[1], 0) != EO_OK
        || eo_arg_name("GROUP", o->arg[2], 0) != EO_OK)
    {
        return EO_USAGE;
    }

    memset(&old, 0, sizeof(eo_table_t));
    dump = NULL;
    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_WRITE | EO_DB_CREATE, o) != EO_OK
        || eo_write_begin(&db, &old, &gen, &dump, 0) != EO_OK)
    {
        goto done;
    }

    p = eo_pair_find(old.groups, old.ngroups, o->arg[1]);

    if (p == NULL && old.ngroups >= EO_GROUPS_MAX) {
        eo_err("%s: the table already has %zu groups, at most %d are "
               "allowed", o->arg[0], old.ngroups, EO_GROUPS_MAX);
        goto done;
    }

    if (eo_put(&db, EO_DB_GROUPS, o->arg[1], strlen(o->arg[1]), o->arg[2],
               strlen(o->arg[2]))
        != EO_OK
        || eo_write_finish(&db, "put-group", gen, old.default_group, dump)
           != EO_OK
        || eo_db_commit(&db) != EO_OK)
    {
        goto done;
    }

    printf("put group %s -> %s (%s%s): generation %" PRIu64 " -> %" PRIu64
           "\n", o->arg[1], o->arg[2], p != NULL ? "was " : "new",
           p != NULL ? p->value : "", gen, gen + 1);

    rc = EO_OK;

done:

    eo_db_close(&db);
    eo_table_free(&old);
    free(dump);

    return rc;
}


static int
eo_cmd_del_group(eo_opts_t *o)
{
    int          rc;
    char        *dump;
    uint64_t     gen;
    eo_db_t      db;
    eo_pair_t   *p;
    eo_table_t   old;

    if (eo_arg_name("REGION", o->arg[1], 0) != EO_OK) {
        return EO_USAGE;
    }

    memset(&old, 0, sizeof(eo_table_t));
    dump = NULL;
    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_WRITE, o) != EO_OK
        || eo_write_begin(&db, &old, &gen, &dump, 0) != EO_OK)
    {
        goto done;
    }

    p = eo_pair_find(old.groups, old.ngroups, o->arg[1]);

    if (p == NULL) {
        eo_err("%s: no group for region %s", o->arg[0], o->arg[1]);
        goto done;
    }

    if (eo_del(&db, EO_DB_GROUPS, o->arg[1]) != EO_OK
        || eo_write_finish(&db, "del-group", gen, old.default_group, dump)
           != EO_OK
        || eo_db_commit(&db) != EO_OK)
    {
        goto done;
    }

    printf("deleted group %s (was %s): generation %" PRIu64 " -> %" PRIu64
           "\n", o->arg[1], p->value, gen, gen + 1);

    rc = EO_OK;

done:

    eo_db_close(&db);
    eo_table_free(&old);
    free(dump);

    return rc;
}


static int
eo_cmd_info(eo_opts_t *o)
{
    int         rc, d;
    char        buf[EO_META_LEN], when[64];
    time_t      tt;
    uint64_t    gen, ts;
    eo_db_t     db;
    MDB_stat    ms;
    struct tm   tm;

    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_READ, o) != EO_OK
        || eo_generation(&db, EO_DB_META, &gen) != EO_OK)
    {
        goto done;
    }

    printf("table: %s\n", o->arg[0]);
    printf("schema: " EO_SCHEMA "\n");
    printf("generation: %" PRIu64 "\n", gen);

    d = eo_meta_get(&db, "updated_at", buf, sizeof(buf));
    if (d < 0) {
        goto done;
    }

    if (d == 0 && eo_parse_u64(buf, &ts) == 0) {
        tt = (time_t) ts;

        if (gmtime_r(&tt, &tm) != NULL
            && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
        {
            printf("updated_at: %s (%s)\n", buf, when);

        } else {
            printf("updated_at: %s\n", buf);
        }

    } else {
        printf("updated_at: %s\n", d == 0 ? buf : "unknown");
    }

    d = eo_meta_get(&db, "op", buf, sizeof(buf));
    if (d < 0) {
        goto done;
    }

    printf("op: %s\n", d == 0 ? buf : "unknown");

    d = eo_meta_get(&db, "default_group", buf, sizeof(buf));
    if (d < 0) {
        goto done;
    }

    printf("default_group: %s\n", d == 0 ? buf : "none");

    for (d = 0; d < EO_DB_META; d++) {
        ms.ms_entries = 0;

        if (db.have[d]) {
            rc = mdb_stat(db.txn, db.dbi[d], &ms);
            if (rc != 0) {
                rc = eo_lmdb_fail(&db, "mdb_stat", rc);
                goto done;
            }
        }

        printf("%s: %zu\n", eo_db_names[d], (size_t) ms.ms_entries);
    }

    rc = EO_ERROR;

    if (eo_generation(&db, EO_DB_PREVIOUS, &gen) != EO_OK) {
        goto done;
    }

    if (gen > 0) {
        printf("previous_generation: %" PRIu64 "\n", gen);

    } else {
        printf("previous_generation: none\n");
    }

    rc = EO_OK;

done:

    eo_db_close(&db);

    return rc;
}


static int
eo_cmd_rollback(eo_opts_t *o)
{
    int          rc;
    char        *dump, *src;
    size_t       len;
    MDB_val      v;
    uint64_t     gen, prev;
    eo_db_t      db;
    eo_table_t   t, old;

    memset(&t, 0, sizeof(eo_table_t));
    memset(&old, 0, sizeof(eo_table_t));
    dump = NULL;
    src = NULL;
    rc = EO_ERROR;

    if (eo_db_open(&db, o->arg[0], EO_DB_WRITE, o) != EO_OK
        || eo_generation(&db, EO_DB_PREVIOUS, &prev) != EO_OK)
    {
        goto done;
    }

    rc = eo_get(&db, EO_DB_PREVIOUS, "table", &v);

    if (rc == MDB_NOTFOUND) {
        eo_err("%s: no previous table to roll back to", o->arg[0]);
    }

    if (rc != EO_OK) {
        rc = EO_ERROR;
        goto done;
    }

    rc = EO_ERROR;

    len = strlen(o->arg[0]) + sizeof(": previous table");

    src = malloc(len);
    if (src == NULL) {
        eo_err(EO_PROG ": out of memory");
        goto done;
    }

    snprintf(src, len, "%s: previous table", o->arg[0]);

    /* the saved dump goes through the same validation as routes.json */

    if (eo_table_load(src, v.mv_data, v.mv_size, &t) != EO_OK
        || eo_write_begin(&db, &old, &gen, &dump, 1) != EO_OK
        || eo_table_write(&db, &t) != EO_OK
        || eo_write_finish(&db, "rollback", gen, t.default_group, dump)
           != EO_OK
        || eo_db_commit(&db) != EO_OK)
    {
        goto done;
    }

    printf("rolled back to the table of generation %" PRIu64 ": generation "
           "%" PRIu64 " -> %" PRIu64 "\n", prev, gen, gen + 1);

    rc = EO_OK;

done:

    eo_db_close(&db);
    eo_table_free(&t);
    eo_table_free(&old);
    free(dump);
    free(src);

    return rc;
}


int
main(int argc, char **argv)
{
    int            c, rc;
    eo_opts_t      o;
    eo_command_t  *cmd;

    memset(&o, 0, sizeof(eo_opts_t));
    opterr = 0;

    for ( ;; ) {
        c = getopt_long(argc, argv, "qh", eo_long_options, NULL);

        if (c == -1) {
            break;
        }

        switch (c) {

        case 'd':
            o.device = optarg;
            break;

        case 'b':
            o.bucket = optarg;
            break;

        case 'u':
            o.ua = optarg;
            break;

        case 'o':
            o.owner = optarg;
            break;

        case 'q':
            o.quiet = 1;
            break;

        case 'm':
            if (eo_parse_mapsize(optarg, &o.mapsize) != 0) {
                eo_err(EO_PROG ": --mapsize: bad size \"%s\" (a number of "
                       "bytes >= 1M, suffix K, M or G)", optarg);
                return EO_USAGE;
            }

            break;

        case 'h':
            eo_usage(stdout);
            return (fflush(stdout) == 0) ? EO_OK : EO_ERROR;

        default:
            eo_bad_option(argv[optind - 1]);

            eo_err("try \"" EO_PROG " --help\"");
            return EO_USAGE;
        }
    }

    if (optind >= argc) {
        eo_usage(stderr);
        return EO_USAGE;
    }

    o.cmd = argv[optind];
    o.arg = &argv[optind + 1];
    o.nargs = argc - optind - 1;

    for (cmd = eo_commands; cmd->name != NULL; cmd++) {
        if (strcmp(cmd->name, o.cmd) == 0) {
            break;
        }
    }

    if (cmd->name == NULL) {
        eo_err(EO_PROG ": unknown command \"%s\"; try \"" EO_PROG
               " --help\"", o.cmd);
        return EO_USAGE;
    }

    if (o.nargs != cmd->nargs) {
        eo_err(EO_PROG ": %s takes %d argument%s, got %d; try \"" EO_PROG
               " --help\"", o.cmd, cmd->nargs, cmd->nargs == 1 ? "" : "s",
               o.nargs);
        return EO_USAGE;
    }

    if (!(cmd->flags & EO_CMD_KEY) && (o.device != NULL || o.bucket != NULL))
    {
        eo_err(EO_PROG ": %s does not take --device or --bucket", o.cmd);
        return EO_USAGE;
    }

    if (!(cmd->flags & EO_CMD_RESOLVE) && (o.ua != NULL || o.quiet)) {
        eo_err(EO_PROG ": %s does not take --ua or --quiet", o.cmd);
        return EO_USAGE;
    }

    if (!(cmd->flags & EO_CMD_WRITE) && (o.mapsize || o.owner != NULL)) {
        eo_err(EO_PROG ": %s does not take --mapsize or --owner", o.cmd);
        return EO_USAGE;
    }

    if (o.owner != NULL) {
        rc = eo_parse_owner(&o);
        if (rc != EO_OK) {
            return rc;
        }
    }

    rc = cmd->handler(&o);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        eo_err(EO_PROG ": cannot write to stdout: %s", strerror(errno));
        return EO_ERROR;
    }

    return rc;
}
