/* jx: the JSON writer (jx_put, jx_put_str) prints what json-c prints for the same value and
 * flags, byte for byte: provider request bodies and stored messages depend on it. */
#include "check.h"
#include "jx.h"

#include <stdlib.h>

/* jx_put's text of v equals json-c's under flags. */
static int same(json_object *v, int flags)
{
    buf_t b;
    buf_init(&b, 0);
    jx_put(&b, v, flags);
    const char *want = json_object_to_json_string_ext(v, flags);
    int ok = !b.failed && strcmp(buf_str(&b), want) == 0;
    if (!ok)
        fprintf(stderr, "  jx_put: %s\n  json-c: %s\n", buf_str(&b), want);
    buf_free(&b);
    return ok;
}

static void test_put_matches_json_c(void)
{
    const int plain = JSON_C_TO_STRING_PLAIN,
              noslash = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    char ctl[40];
    for (int i = 0; i < 32; i++)
        ctl[i] = (char)(i + 1);
    ctl[31] = '\x7f';
    ctl[32] = 0;
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    json_object_object_add(o, "s", jx_new_str("a/b \"q\" \\ é \xf0\x9f\x98\x80 </script>"));
    json_object_object_add(o, "ctl", jx_new_str(ctl));
    json_object_object_add(o, "k/ey\n", json_object_new_int(-42));
    json_object_object_add(o, "big", json_object_new_int64(9007199254740993LL));
    json_object_object_add(o, "num", jx_new_num(0.7));
    json_object_object_add(o, "whole", jx_new_num(30));
    json_object_object_add(o, "dbl", json_object_new_double(1.0 / 3));
    json_object_object_add(o, "t", json_object_new_boolean(1));
    json_object_object_add(o, "f", json_object_new_boolean(0));
    json_object_object_add(o, "null", NULL);
    json_object_object_add(o, "empty_o", json_object_new_object());
    json_object_object_add(o, "empty_a", json_object_new_array());
    json_object_array_add(a, NULL);
    json_object_array_add(a, jx_new_str(""));
    json_object_array_add(a, json_object_get(o));
    json_object *parsed = jx_parse("{\"x\":[1,2.50,-0.0,1e3,{\"y\":\"\\u0001z\\/\"}],\"u\":\"\\ud83d\\ude00\"}");
    CHECK(parsed != NULL);
    json_object_array_add(a, parsed);
    for (int f = 0; f < 2; f++) {
        int flags = f ? noslash : plain;
        CHECK(same(o, flags));
        CHECK(same(a, flags));
        CHECK(same(parsed, flags));
    }
    buf_t b;
    buf_init(&b, 0);
    jx_put(&b, NULL, plain);
    CHECK(strcmp(buf_str(&b), "null") == 0);
    buf_reset(&b);
    jx_put_str(&b, "a\0/b", 4, plain);
    CHECK(b.len == 12 && memcmp(b.s, "\"a\\u0000\\/b\"", 12) == 0);
    buf_free(&b);
    json_object_put(a);
    json_object_put(o);
}

/* A failed buffer fails the whole text once: nothing after it is written. */
static void test_put_sticky_failure(void)
{
    buf_t b;
    buf_init(&b, 8);
    json_object *s = jx_new_str("longer than eight bytes");
    CHECK(jx_put(&b, s, JSON_C_TO_STRING_PLAIN) != 0);
    CHECK(b.failed != 0);
    CHECK(jx_put(&b, NULL, JSON_C_TO_STRING_PLAIN) == b.failed);
    json_object_put(s);
    buf_free(&b);
}

/* jx_put_str scans eight bytes at a time: every byte value at every position of strings
 * around the word size, in runs of plain and special bytes, escapes as json-c does. */
static void test_put_str_every_position(void)
{
    static const unsigned char pick[] = {'a', ' ', '/', '"', '\\', 0, 1, '\n', 0x1f, 0x20,
                                         0x7f, 0x80, 0xc3, 0xa9, 0xff, '0', '!', '.'};
    unsigned seed = 12345;
    char s[40];
    int bad = 0;
    for (int round = 0; round < 3000 && !bad; round++) {
        size_t n = (size_t)(round % 37);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            /* mostly plain bytes, so the word loop runs too */
            unsigned r = (seed >> 16) % 64;
            s[i] = (char)(r < sizeof pick ? pick[r] : 'a' + (char)(r % 26));
        }
        json_object *v = json_object_new_string_len(s, (int)n);
        for (int f = 0; f < 2; f++) {
            int flags = JSON_C_TO_STRING_PLAIN | (f ? JSON_C_TO_STRING_NOSLASHESCAPE : 0);
            buf_t b;
            buf_init(&b, 0);
            jx_put_str(&b, s, n, flags);
            const char *want = json_object_to_json_string_ext(v, flags);
            if (b.failed || strcmp(buf_str(&b), want) != 0) {
                fprintf(stderr, "  round %d flags %d: %s vs %s\n", round, flags, buf_str(&b), want);
                bad = 1;
            }
            buf_free(&b);
        }
        json_object_put(v);
    }
    CHECK(!bad);
    /* every single byte value, alone and after seven plain bytes */
    for (int c = 0; c < 256 && !bad; c++) {
        for (int pre = 0; pre < 9; pre += 8) {
            memset(s, 'x', 8);
            s[pre] = (char)c;
            json_object *v = json_object_new_string_len(s, pre + 1);
            buf_t b;
            buf_init(&b, 0);
            jx_put_str(&b, s, (size_t)pre + 1, JSON_C_TO_STRING_PLAIN);
            const char *want = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
            bad |= strcmp(buf_str(&b), want) != 0;
            buf_free(&b);
            json_object_put(v);
        }
    }
    CHECK(!bad);
}

/* jx_new_num's whole-number path writes what the printf path writes: "%.15g" + ".0". */
static void test_new_num_whole(void)
{
    const double big = 999999999999999.0; /* the largest the whole-number path takes */
    const double xs[] = {0.0, -0.0, 1,    -1,   7,     10,   30,  100, 4096, -12345,
                         big, -big, 1e14, 1e15, 1e16, 1e300, 0.5, -2.5, 123456789012345.0};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        char want[48];
        snprintf(want, sizeof want - 2, "%.15g", xs[i]);
        if (strtod(want, NULL) != xs[i])
            snprintf(want, sizeof want - 2, "%.17g", xs[i]);
        if (!strpbrk(want, ".eE"))
            strcat(want, ".0");
        json_object *v = jx_new_num(xs[i]);
        const char *got = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        if (strcmp(got, want) != 0)
            fprintf(stderr, "  %.17g: %s, want %s\n", xs[i], got, want);
        CHECK_EQ_STR(got, want);
        CHECK(json_object_get_double(v) == xs[i]);
        json_object_put(v);
    }
}

/* jx_members finds what jx_get finds; jx_str_ref shares a plain string, copies the text
 * up to a NUL as jx_new_str does, and gives def for what is no string. */
static void test_members_and_str_ref(void)
{
    json_object *o =
        jx_parse("{\"role\":\"tool\",\"content\":null,\"r\":1,\"rolex\":\"x\"}");
    static const char *const keys[] = {"role", "content", "missing", "r", NULL};
    json_object *f[4] = {o, o, o, o};
    jx_members(o, keys, f);
    CHECK(f[0] == jx_get(o, "role") && f[0] != NULL);
    CHECK(f[1] == NULL && f[2] == NULL);
    CHECK(f[3] == jx_get(o, "r") && f[3] != NULL);
    CHECK_EQ_STR(jx_as_str(f[0]), "tool");
    CHECK(jx_as_str(f[3]) == NULL);
    json_object *none[4] = {o, o, o, o};
    jx_members(NULL, keys, none);
    CHECK(!none[0] && !none[1] && !none[2] && !none[3]);
    json_object *shared = jx_str_ref(f[0], "d"), *nul = json_object_new_string_len("a\0b", 3);
    CHECK(shared == f[0]);
    json_object_put(shared);
    json_object *cut = jx_str_ref(nul, "d"), *def = jx_str_ref(f[3], "d");
    CHECK(cut != nul && json_object_get_string_len(cut) == 1);
    CHECK_EQ_STR(json_object_get_string(def), "d");
    json_object_put(cut);
    json_object_put(def);
    json_object_put(nul);
    json_object_put(o);
}

int main(void)
{
    RUN(test_put_matches_json_c);
    RUN(test_put_sticky_failure);
    RUN(test_put_str_every_position);
    RUN(test_new_num_whole);
    RUN(test_members_and_str_ref);
    return check_report();
}
