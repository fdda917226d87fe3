/* viewer text: the plain tree, follow lines, the detail pane's lines and wrapping, all
 * from the fixture traces without a database. */
#include "check.h"
#include "viewer/viewer_int.h"
#include "viewer/viewer_tui.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>

static spantree_t *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f)
        return NULL;
    spantree_t *m = spantree_new(NULL);
    char line[8192], err[200];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (*line)
            CHECK_EQ_INT(spantree_add(m, line, err, sizeof err), 0);
    }
    fclose(f);
    return m;
}

static char *tree_text(spantree_t *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    viewer_plain_tree(m, NULL, f);
    fclose(f);
    return buf;
}

static void test_tree(void)
{
    spantree_t *m = load("tests/fixtures/traces/failed_run.jsonl");
    char *t = tree_text(m);
    CHECK(strstr(t, "run 5f3a9c12e4b0d7a1  agent support  state failed") != NULL);
    CHECK(strstr(t, "tokens 1916 in / 121 out") != NULL);
    CHECK(strstr(t, "errors 2  retries 2") != NULL);
    /* UTF-8 locale: box-drawing tree; the failing tool with its error and arguments. */
    CHECK(strstr(t, "│  ├─ execute_tool lookup_order") != NULL);
    CHECK(strstr(t, "5.28s  ERROR  call=call_1 args={\"order_id\":\"1042\"} error: lookup_order: "
                    "orders.db: no such table: orders") != NULL);
    CHECK(strstr(t, "openai gpt-4o-mini-2024-07-18 in=812 out=64 $0.000160") != NULL);
    /* The chat retry is printed under its span, with the delay before the next try. */
    CHECK(strstr(t, "· +5.91s retry openai:gpt-4o-mini #1: HTTP 503 from api.openai.com (next "
                    "try after 800 ms)") != NULL);
    CHECK(strstr(t, "└─ plan") != NULL);
    free(t);
    /* ASCII when the locale is not UTF-8. */
    setlocale(LC_ALL, "C");
    t = tree_text(m);
    CHECK(strstr(t, "|  |- execute_tool lookup_order") != NULL);
    CHECK(strstr(t, "`- plan") != NULL);
    free(t);
    setlocale(LC_ALL, "C.UTF-8");
    spantree_free(m);
}

static void test_follow_lines(void)
{
    spantree_t *m = load("tests/fixtures/traces/failed_run.jsonl");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int i = 0; i < m->nevs; i++)
        viewer_plain_event(m, &m->evs[i], f);
    fclose(f);
    int lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    CHECK_EQ_INT(lines, 16);
    CHECK(strstr(buf, "#5     begin act                              -> acting") != NULL);
    CHECK(strstr(buf, "#10    end   execute_tool lookup_order         ERROR") != NULL);
    CHECK(strstr(buf, "#16    end   invoke_agent support             -> failed  ERROR") != NULL);
    free(buf);
    spantree_free(m);
}

static int has_line(const vlines_t *l, const char *needle)
{
    for (int i = 0; i < l->n; i++)
        if (strstr(l->v[i].text, needle))
            return 1;
    return 0;
}

static void test_detail(void)
{
    spantree_t *m = load("tests/fixtures/traces/failed_run.jsonl");
    CHECK_EQ_INT(spantree_flatten(m, 1), 0);
    vlines_t l = {.width = 80};
    int tool = spantree_find(m, "d000000000000001");
    CHECK_EQ_INT(viewer_detail_build(&l, NULL, m, tool, 0), 0);
    CHECK_EQ_STR(l.v[0].text, "execute_tool lookup_order");
    CHECK(has_line(&l, "status ERROR   start +416ms   duration 5.28s"));
    CHECK(has_line(&l, "  lookup_order: orders.db: no such table: orders"));
    CHECK(has_line(&l, "retry lookup_order  delay=250ms error: tool timed out after 5000 ms"));
    CHECK(has_line(&l, "\"order_id\": \"1042\""));
    CHECK(has_line(&l, "── events (2) ──"));
    for (int i = 0; i < l.n; i++)
        CHECK(vtui_width(l.v[i].text) <= 80);
    int chat = spantree_find(m, "c000000000000002");
    l.width = 120;
    CHECK_EQ_INT(viewer_detail_build(&l, NULL, m, chat, 0), 0);
    CHECK(has_line(&l, "retry openai:gpt-4o-mini #1: HTTP 503 from api.openai.com  → next try "
                       "after 800 ms"));
    /* The copy-friendly form is the span's JSON and nothing else. */
    CHECK_EQ_INT(viewer_detail_build(&l, NULL, m, tool, 1), 0);
    CHECK_EQ_STR(l.v[0].text, "{");
    CHECK(has_line(&l, "\"span_id\": \"d000000000000001\""));
    vlines_clear(&l);
    free(l.v);
    spantree_free(m);
}

static void test_wrap(void)
{
    vlines_t l = {.width = 10};
    CHECK_EQ_INT(vlines_add(&l, VL_TEXT, "  ", "abcdefghijklmnop\nxy\tz"), 0);
    CHECK_EQ_INT(l.n, 3);
    CHECK_EQ_STR(l.v[0].text, "  abcdefgh");
    CHECK_EQ_STR(l.v[1].text, "  ijklmnop");
    CHECK_EQ_STR(l.v[2].text, "  xy z");
    vlines_clear(&l);
    /* Words stay whole when a space is near the end of the line. */
    CHECK_EQ_INT(vlines_add(&l, VL_TEXT, "", "hello big world"), 0);
    CHECK_EQ_INT(l.n, 2);
    CHECK_EQ_STR(l.v[0].text, "hello big ");
    CHECK_EQ_STR(l.v[1].text, "world");
    vlines_clear(&l);
    CHECK_EQ_INT(vlines_add(&l, VL_TEXT, "", "ééééééééééé"), 0);
    CHECK_EQ_INT(l.n, 2);
    CHECK_EQ_INT(vtui_width(l.v[0].text), 10);
    int cols;
    CHECK_EQ_INT(vtui_clip("├─ab", 3, &cols), 7);
    CHECK_EQ_INT(cols, 3);
    vlines_clear(&l);
    free(l.v);
}

int main(void)
{
    setlocale(LC_ALL, "C.UTF-8");
    RUN(test_tree);
    RUN(test_follow_lines);
    RUN(test_detail);
    RUN(test_wrap);
    return check_report();
}
