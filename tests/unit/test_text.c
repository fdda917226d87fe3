/* Clean text at every door (issue 18, item 6): the UTF-8 and NUL checks of text.h, the
 * strict JSON parse that refuses invalid UTF-8 and \u0000, and the scrub of quoted bytes. */
#include "check.h"
#include "err.h"
#include "schema/schema.h"
#include "text.h"

#include <json-c/json.h>
#include <string.h>

static void test_utf8_sequences(void)
{
    CHECK_EQ_INT(text_utf8_bad("plain ascii", 11), -1);
    CHECK_EQ_INT(text_utf8_bad("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14), -1);
    CHECK_EQ_INT(text_utf8_bad("ab\xff", 3), 2);             /* not a lead byte */
    CHECK_EQ_INT(text_utf8_bad("a\xc3\x28", 3), 1);          /* bad continuation */
    CHECK_EQ_INT(text_utf8_bad("a\xc0\xaf", 3), 1);          /* overlong '/' */
    CHECK_EQ_INT(text_utf8_bad("\xed\xa0\x80", 3), 0);       /* a surrogate */
    CHECK_EQ_INT(text_utf8_bad("\xf4\x90\x80\x80", 4), 0);   /* past U+10FFFF */
    CHECK_EQ_INT(text_utf8_bad("ok\xe2\x82", 4), 2);         /* cut short */
}

static void test_check_names_the_source(void)
{
    char err[200];
    CHECK_EQ_INT(text_check("fine", 4, "the input", err, sizeof err), 0);
    CHECK_EQ_INT(text_check("a\0b", 3, "the input (stdin)", err, sizeof err), ERR_INVAL);
    CHECK_EQ_STR(err, "the input (stdin): contains a NUL byte (byte 1)");
    CHECK_EQ_INT(text_check("x\xfe", 2, "--session", err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "--session: not valid UTF-8 (byte 1)") == err);
}

static void test_strict_parse(void)
{
    json_object *o = NULL;
    char err[200];
    const char *bad_utf8 = "{\"a\": \"x\xff\"}";
    CHECK_EQ_INT(schema_parse_json(bad_utf8, strlen(bad_utf8), &o, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "invalid UTF-8 in a string") != NULL);
    const char *bad_key = "{\"k\xc3\x28\": 1}";
    CHECK_EQ_INT(schema_parse_json(bad_key, strlen(bad_key), &o, err, sizeof err), ERR_INVAL);
    const char *escaped = "[\"a\\n\xc3\xa9\\u00e9\"]"; /* slow path, valid */
    CHECK_EQ_INT(schema_parse_json(escaped, strlen(escaped), &o, err, sizeof err), 0);
    CHECK_EQ_STR(json_object_get_string(json_object_array_get_idx(o, 0)), "a\n\xc3\xa9\xc3\xa9");
    json_object_put(o);
    const char *bad_slow = "[\"a\\n\xff\"]";
    CHECK_EQ_INT(schema_parse_json(bad_slow, strlen(bad_slow), &o, err, sizeof err), ERR_INVAL);
    const char *nul = "\"a\\u0000b\"";
    CHECK_EQ_INT(schema_parse_json(nul, strlen(nul), &o, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "NUL character (\\u0000) in a string") != NULL);
    /* Documents only validated may hold U+0000. */
    o = NULL;
    CHECK_EQ_INT(schema_parse_json_ex(nul, strlen(nul), SCHEMA_PARSE_DOCUMENT, &o, err, sizeof err), 0);
    CHECK_EQ_INT(json_object_get_string_len(o), 3);
    json_object_put(o);
}

static void test_scrub(void)
{
    char s[] = "bad \xff byte\x1b[31m\ttab\nline \xe2\x82";
    text_scrub(s);
    CHECK_EQ_STR(s, "bad ? byte [31m\ttab\nline ??");
    CHECK_EQ_INT(text_utf8_bad(s, strlen(s)), -1);
}

int main(void)
{
    RUN(test_utf8_sequences);
    RUN(test_check_names_the_source);
    RUN(test_strict_parse);
    RUN(test_scrub);
    return check_report();
}
