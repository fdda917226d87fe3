/*
 * test_rag: the retrieval module below the command line — parsing (text, Markdown, HTML with
 * navigation dropped), each chunking strategy's boundaries and offsets, the offline embedder,
 * the three search modes with filters, re-indexing, removal, a refused embedder and eval.
 */
#include "check.h"
#include "err.h"
#include "rag/rag_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void test_markdown_blocks(void)
{
    const char *md = "# Guide\n\nIntro para\nline two.\n\n## Install\n\n```\n# not a heading\n```\n\n"
                     "Setext\n------\n\nLast.";
    rag_doc_t d = {0};
    CHECK_EQ_INT(rag_parse_md(md, strlen(md), &d), 0);
    CHECK_EQ_STR(d.title, "Guide");
    CHECK_EQ_INT(d.n, 6);
    CHECK_EQ_INT(d.v[0].level, 1);
    CHECK_EQ_STR(d.v[1].text, "Intro para\nline two.");
    /* offsets point at the text in the source */
    CHECK(!strncmp(md + d.v[1].start, "Intro para", 10));
    CHECK_EQ_INT(d.v[2].level, 2);
    CHECK(d.v[3].pre && strstr(d.v[3].text, "# not a heading"));
    CHECK_EQ_INT(d.v[4].level, 2);
    CHECK_EQ_STR(d.v[4].text, "Setext");
    CHECK_EQ_STR(d.v[5].text, "Last.");
    rag_doc_clear(&d);
}

static void test_html_drops_chrome(void)
{
    const char *html =
        "<html><head><title>WAL  Mode</title><style>p{color:red}</style>"
        "<script>var x = 'secret script';</script></head><body>"
        "<nav><a href=x>Home</a> <a>Docs</a></nav><div class=\"menu mainmenu\">Menu item</div>"
        "<h1>Write-Ahead Log</h1><p>The WAL file &amp; the <b>checkpoint</b>.</p>"
        "<h2>Details</h2><ul><li>one</li><li>two</li></ul><footer>Copyright</footer>"
        "<div class=nosearch>search box</div></body></html>";
    rag_doc_t d = {0};
    char err[200];
    CHECK_EQ_INT(rag_parse_html(html, strlen(html), &d, err, sizeof err), 0);
    CHECK_EQ_STR(d.title, "WAL Mode");
    int saw_h1 = 0, saw_p = 0, chrome = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (d.v[i].level == 1 && !strcmp(d.v[i].text, "Write-Ahead Log"))
            saw_h1 = 1;
        if (!strcmp(d.v[i].text, "The WAL file & the checkpoint."))
            saw_p = 1;
        if (strstr(d.v[i].text, "secret") || strstr(d.v[i].text, "Home") ||
            strstr(d.v[i].text, "Menu") || strstr(d.v[i].text, "Copyright") ||
            strstr(d.v[i].text, "color") || strstr(d.v[i].text, "search box"))
            chrome = 1;
    }
    CHECK(saw_h1);
    CHECK(saw_p);
    CHECK(!chrome);
    rag_doc_clear(&d);
}

static void test_text_check(void)
{
    char err[200];
    CHECK_EQ_INT(rag_text_check("ok text", 7, err, sizeof err), 0);
    CHECK_EQ_INT(rag_text_check("a\0b", 3, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "binary"));
    CHECK_EQ_INT(rag_text_check("caf\xe9 x", 6, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "invalid UTF-8 at byte 3"));
    CHECK_EQ_INT(rag_text_check("\xc0\xaf", 2, err, sizeof err), ERR_INVAL); /* overlong */
    CHECK_EQ_INT(rag_text_check(" \n\t ", 4, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "empty"));
    CHECK_EQ_INT(rag_text_check("h\xc3\xa9 \xe2\x82\xac", 7, err, sizeof err), 0);
}

/* A document of 3 sections with paragraphs of known word counts. */
static void make_doc(rag_doc_t *d, const char **src)
{
    static char buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "# A\n\n");
    for (int p = 0; p < 3; p++) { /* 3 paragraphs of 10 words, 2 sentences each */
        for (int w = 0; w < 10; w++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "w%d%s", p * 10 + w,
                                  w == 4 || w == 9 ? ". " : " ");
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\n\n");
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n, "## B\n\nshort para here.\n");
    *src = buf;
    rag_parse_md(buf, n, d);
}

static void test_chunk_strategies(void)
{
    const char *src;
    rag_doc_t d = {0};
    make_doc(&d, &src);
    rag_kb_t kb = {.size = 12, .overlap = 4};
    rag_chunks_t c = {0};

    snprintf(kb.strategy, sizeof kb.strategy, "fixed");
    CHECK_EQ_INT(rag_chunk_doc(&d, &kb, &c), 0);
    /* 33 words, windows of 12 stepping 8: starts 0, 8, 16, 24 */
    CHECK_EQ_INT(c.n, 4);
    CHECK_EQ_INT(c.v[0].tokens, 12);
    CHECK_EQ_INT(c.v[3].tokens, 9);
    CHECK(strstr(c.v[1].text, "w8") == c.v[1].text); /* overlap: starts 4 before the end */
    CHECK_EQ_STR(c.v[0].heading, "A");
    CHECK_EQ_STR(c.v[3].heading, "A"); /* heading at the window's first word */
    CHECK(!strncmp(src + c.v[0].start, "w0", 2));
    CHECK(!strncmp(src + c.v[0].end - 3, "w11", 3) || !strncmp(src + c.v[0].end - 4, "w11", 3));
    rag_chunks_clear(&c);

    snprintf(kb.strategy, sizeof kb.strategy, "structure");
    CHECK_EQ_INT(rag_chunk_doc(&d, &kb, &c), 0);
    /* paragraphs of 10 do not merge under 12; the B section is its own chunk */
    CHECK_EQ_INT(c.n, 4);
    CHECK_EQ_INT(c.v[0].tokens, 10);
    CHECK_EQ_STR(c.v[3].heading, "A > B");
    CHECK_EQ_STR(c.v[3].text, "short para here.");
    rag_chunks_clear(&c);
    kb.size = 25; /* two paragraphs fit: 20, then 10 */
    CHECK_EQ_INT(rag_chunk_doc(&d, &kb, &c), 0);
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_INT(c.v[0].tokens, 20);
    CHECK(strstr(c.v[0].text, "w9.\n\nw10")); /* paragraph pieces joined by a blank line */
    rag_chunks_clear(&c);

    snprintf(kb.strategy, sizeof kb.strategy, "sentence");
    kb.size = 12; /* sentences of 5 words: two per chunk */
    CHECK_EQ_INT(rag_chunk_doc(&d, &kb, &c), 0);
    CHECK_EQ_INT(c.n, 4);
    CHECK_EQ_INT(c.v[0].tokens, 10);
    CHECK(strstr(c.v[1].text, "w10") == c.v[1].text);
    size_t l = strlen(c.v[0].text);
    CHECK(l > 0 && c.v[0].text[l - 1] == '.'); /* ends at a sentence end */
    rag_chunks_clear(&c);
    kb.size = 8; /* a sentence never exceeds, never split here */
    CHECK_EQ_INT(rag_chunk_doc(&d, &kb, &c), 0);
    for (size_t i = 0; i < c.n; i++)
        CHECK(c.v[i].tokens <= 8);
    rag_chunks_clear(&c);
    rag_doc_clear(&d);
}

static double cosine(const float *a, const float *b, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

static void test_offline_embedder(void)
{
    float a[256], b[256], c[256], z[256];
    rag_embed_offline("How do I enable write-ahead logging?", 256, a);
    rag_embed_offline("enabling the write ahead log", 256, b);
    rag_embed_offline("foreign key constraints on delete cascade", 256, c);
    double n = 0;
    for (int i = 0; i < 256; i++)
        n += (double)a[i] * a[i];
    CHECK(fabs(n - 1.0) < 1e-4);
    CHECK(cosine(a, b, 256) > 0.3);
    CHECK(cosine(a, b, 256) > cosine(a, c, 256) + 0.2);
    float a2[256];
    rag_embed_offline("How do I enable write-ahead logging?", 256, a2);
    CHECK(!memcmp(a, a2, sizeof a)); /* deterministic */
    rag_embed_offline("the and of", 256, z);
    for (int i = 0; i < 256; i++)
        CHECK(z[i] == 0);
}

static rag_t *open_fresh(const char *name)
{
    char p[128], err[300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    rag_t *r = rag_open(p, err, sizeof err);
    if (!r)
        fprintf(stderr, "  %s\n", err);
    return r;
}

static void add_docs(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/docs", dir);
    mkdir(p, 0755);
    write_file("docs/wal.md", "# Write-ahead logging\n\nTurn on WAL with PRAGMA journal_mode=WAL. "
                              "Readers do not block writers.\n\n## Checkpoints\n\nA checkpoint "
                              "copies pages from the log back into the database file.\n");
    write_file("docs/fk.md", "# Foreign keys\n\nForeign key constraints are off by default; "
                             "enable them with PRAGMA foreign_keys=ON.\n");
    write_file("docs/json.html", "<html><head><title>JSON functions</title></head><body>"
                                 "<h1>JSON</h1><p>Use json_extract to read a field of a "
                                 "document.</p></body></html>");
    char bin[128];
    snprintf(bin, sizeof bin, "%s/docs/bin.txt", dir);
    FILE *f = fopen(bin, "wb");
    fwrite("abc\001\000def", 1, 8, f);
    fclose(f);
}

static void test_search_modes(void)
{
    add_docs();
    rag_t *r = open_fresh("kb.db");
    CHECK(r != NULL);
    if (!r)
        return;
    char p[128], err[512] = "";
    snprintf(p, sizeof p, "%s/docs", dir);
    const char *paths[1] = {p};
    rag_add_stats_t st;
    rag_kb_opts_t ko = {.strategy = "structure", .size = 50, .overlap = -1};
    rag_add_opts_t ao = {.kb = &ko};
    CHECK_EQ_INT(rag_add(r, "t", paths, 1, &ao, &st, err, sizeof err), 0);
    CHECK_EQ_INT(st.added, 3);
    CHECK_EQ_INT(st.skipped, 1); /* the binary file, inside a folder: a warning only */
    static const int modes[] = {RAG_KEYWORD, RAG_VECTOR, RAG_HYBRID};
    for (int i = 0; i < 3; i++) {
        rag_query_t q = {.text = "how to enable foreign keys", .mode = modes[i], .k = 3};
        rag_hits_t h;
        CHECK_EQ_INT(rag_search(r, "t", &q, &h, err, sizeof err), 0);
        CHECK(h.n >= 1 && strstr(h.v[0].path, "fk.md"));
        CHECK(h.n >= 1 && !strcmp(h.v[0].heading, "Foreign keys"));
        rag_hits_clear(&h);
    }
    /* heading path and the filters */
    rag_query_t q = {.text = "checkpoint pages", .mode = RAG_HYBRID, .k = 5};
    rag_hits_t h;
    CHECK_EQ_INT(rag_search(r, "t", &q, &h, err, sizeof err), 0);
    CHECK(h.n >= 1 && !strcmp(h.v[0].heading, "Write-ahead logging > Checkpoints"));
    rag_hits_clear(&h);
    q.path_glob = "*fk.md";
    CHECK_EQ_INT(rag_search(r, "t", &q, &h, err, sizeof err), 0);
    for (size_t i = 0; i < h.n; i++)
        CHECK(strstr(h.v[i].path, "fk.md"));
    rag_hits_clear(&h);
    q.path_glob = NULL;
    q.heading = "checkpoints";
    q.mode = RAG_VECTOR;
    CHECK_EQ_INT(rag_search(r, "t", &q, &h, err, sizeof err), 0);
    CHECK_EQ_INT(h.n, 1);
    rag_hits_clear(&h);
    /* a query with another embedder is refused */
    rag_query_t q2 = {.text = "x y", .mode = RAG_VECTOR, .embedder = "openai:other"};
    CHECK_EQ_INT(rag_search(r, "t", &q2, &h, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "embedded with offline"));
    /* no such KB */
    CHECK_EQ_INT(rag_search(r, "nope", &q, &h, err, sizeof err), ERR_NOTFOUND);
    CHECK(strstr(err, "no knowledge base named \"nope\""));
    /* other settings for an existing KB */
    rag_kb_opts_t other = {.strategy = "fixed", .overlap = -1};
    rag_add_opts_t ao2 = {.kb = &other};
    CHECK_EQ_INT(rag_add(r, "t", paths, 1, &ao2, &st, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "--strategy structure"));

    /* unchanged, changed, deleted */
    CHECK_EQ_INT(rag_add(r, "t", paths, 1, NULL, &st, err, sizeof err), 0);
    CHECK_EQ_INT(st.unchanged, 3);
    CHECK_EQ_INT(st.added + st.updated, 0);
    write_file("docs/fk.md", "# Foreign keys\n\nCascading deletes use ON DELETE CASCADE.\n");
    snprintf(p, sizeof p, "%s/docs/json.html", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/docs", dir);
    CHECK_EQ_INT(rag_add(r, "t", paths, 1, NULL, &st, err, sizeof err), 0);
    CHECK_EQ_INT(st.updated, 1);
    CHECK_EQ_INT(st.removed, 1);
    CHECK_EQ_INT(st.unchanged, 1);
    rag_query_t q3 = {.text = "cascade", .mode = RAG_KEYWORD, .k = 5};
    CHECK_EQ_INT(rag_search(r, "t", &q3, &h, err, sizeof err), 0);
    CHECK(h.n == 1 && strstr(h.v[0].text, "CASCADE"));
    rag_hits_clear(&h);
    q3.text = "json_extract";
    q3.mode = RAG_HYBRID; /* the vector matrix reloads after the change */
    CHECK_EQ_INT(rag_search(r, "t", &q3, &h, err, sizeof err), 0);
    for (size_t i = 0; i < h.n; i++)
        CHECK(!strstr(h.v[i].path, "json.html"));
    rag_hits_clear(&h);

    json_object *s = NULL;
    CHECK_EQ_INT(rag_stats(r, "t", &s, err, sizeof err), 0);
    json_object *v;
    CHECK(json_object_object_get_ex(s, "docs", &v) && json_object_get_int(v) == 2);
    CHECK(json_object_object_get_ex(s, "strategy", &v) &&
          !strcmp(json_object_get_string(v), "structure"));
    CHECK(json_object_object_get_ex(s, "size", &v) && json_object_get_int(v) == 50);
    json_object_put(s);
    CHECK_EQ_INT(rag_rm(r, "t", err, sizeof err), 0);
    CHECK_EQ_INT(rag_rm(r, "t", err, sizeof err), ERR_NOTFOUND);
    rag_close(r);
}

/* Keyword ranking over the in-memory postings gives FTS5's own bm25() scores and order. */
static void check_bm25_as_sql(rag_t *r, const char *kb, const char *query, const char *expr,
                              const char *glob)
{
    rag_kb_t k;
    char err[512] = "", sql[512];
    CHECK_EQ_INT(rag_kb_get(r, kb, &k, err, sizeof err), 0);
    long long id = (long long)k.id;
    snprintf(sql, sizeof sql,
             "SELECT f.rowid, -bm25(kb_fts_%lld, 2.0, 3.0, 1.0) AS sc FROM kb_fts_%lld f "
             "JOIN kb_chunks c ON c.id = f.rowid JOIN kb_docs d ON d.id = c.doc_id "
             "WHERE kb_fts_%lld MATCH ?1 AND (?2 IS NULL OR d.path GLOB ?2) "
             "ORDER BY sc DESC, f.rowid LIMIT 8",
             id, id, id);
    sqlite3_stmt *s = NULL;
    CHECK_EQ_INT(sqlite3_prepare_v2(r->db, sql, -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_text(s, 1, expr, -1, SQLITE_STATIC);
    if (glob)
        sqlite3_bind_text(s, 2, glob, -1, SQLITE_STATIC);
    rag_query_t q = {.text = query, .mode = RAG_KEYWORD, .k = 8, .path_glob = glob};
    rag_hits_t h;
    CHECK_EQ_INT(rag_search(r, kb, &q, &h, err, sizeof err), 0);
    size_t n = 0;
    while (s && sqlite3_step(s) == SQLITE_ROW) {
        double want = sqlite3_column_double(s, 1);
        CHECK(n < h.n);
        if (n >= h.n)
            break;
        CHECK(fabs(h.v[n].score - want) <= 1e-9 * fabs(want) + 1e-12);
        /* equal scores may come in either order; distinct ones must match */
        if (n + 1 < h.n && fabs(h.v[n].score - h.v[n + 1].score) > 1e-9 && n > 0 &&
            fabs(h.v[n].score - h.v[n - 1].score) > 1e-9)
            CHECK_EQ_INT(h.v[n].chunk_id, sqlite3_column_int64(s, 0));
        n++;
    }
    CHECK_EQ_INT(n, h.n);
    sqlite3_finalize(s);
    rag_hits_clear(&h);
}

static void test_bm25_as_fts5(void)
{
    rag_t *r = open_fresh("bm.db");
    if (!r)
        return;
    static const char *const words[] = {"replica", "leader", "quorum", "snapshot", "vacuum",
                                        "index", "cursor", "journal", "page", "lock",
                                        "commit", "rollback", "trigger", "view", "schema"};
    char p[160], err[512] = "";
    snprintf(p, sizeof p, "%s/bm", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/gap", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/bm", dir);
    unsigned seed = 7;
    for (int d = 0; d < 12; d++) {
        char name[64], text[4096];
        size_t o = (size_t)snprintf(text, sizeof text, "# Doc %s %d\n\n", words[d % 15], d);
        for (int sec = 0; sec < 3; sec++) {
            o += (size_t)snprintf(text + o, sizeof text - o, "## %s\n\n", words[(d + sec * 4) % 15]);
            for (int w = 0; w < 25 + d * 3; w++) {
                seed = seed * 1103515245u + 12345u;
                o += (size_t)snprintf(text + o, sizeof text - o, "%s ", words[(seed >> 16) % 15]);
            }
            o += (size_t)snprintf(text + o, sizeof text - o, "\n\n");
        }
        snprintf(name, sizeof name, "bm/d%02d.md", d);
        write_file(name, text);
    }
    const char *paths[1] = {p};
    rag_kb_opts_t ko = {.size = 40, .overlap = -1};
    rag_add_opts_t ao = {.kb = &ko};
    rag_add_stats_t st;
    CHECK_EQ_INT(rag_add(r, "bm", paths, 1, &ao, &st, err, sizeof err), 0);
    check_bm25_as_sql(r, "bm", "quorum snapshot", "\"quorum\" OR \"snapshot\"", NULL);
    check_bm25_as_sql(r, "bm", "Leader locks the JOURNAL pages",
                      "\"leader\" OR \"locks\" OR \"journal\" OR \"pages\"", NULL);
    check_bm25_as_sql(r, "bm", "triggers", "\"triggers\"", "*d0[3-7].md");
    /* a change reloads the postings */
    write_file("bm/d05.md", "# Changed\n\nquorum quorum quorum snapshot of a replica\n");
    CHECK_EQ_INT(rag_add(r, "bm", paths, 1, &ao, &st, err, sizeof err), 0);
    CHECK_EQ_INT(st.updated, 1);
    check_bm25_as_sql(r, "bm", "quorum snapshot", "\"quorum\" OR \"snapshot\"", NULL);
    rag_query_t q = {.text = "replica", .mode = RAG_KEYWORD, .k = 50};
    rag_hits_t h;
    CHECK_EQ_INT(rag_search(r, "bm", &q, &h, err, sizeof err), 0);
    int found = 0;
    for (size_t i = 0; i < h.n; i++)
        found += strstr(h.v[i].path, "d05.md") && strstr(h.v[i].text, "snapshot of a replica");
    CHECK_EQ_INT(found, 1);
    rag_hits_clear(&h);

    /* A KB whose chunk ids are spread thin (another KB's thousands of chunks between them):
     * rows are found by binary search instead of the direct map. */
    write_file("gap/a.md", "# Alpha\n\nquorum snapshot replica leader\n\n## Beta\n\nvacuum index\n");
    write_file("gap/b.md", "# Delta\n\nquorum journal\n");
    static char big[400000];
    size_t o = 0;
    for (int w = 0; w < 42000 && o + 16 < sizeof big; w++)
        o += (size_t)snprintf(big + o, sizeof big - o, "%s ", words[w % 15]);
    write_file("filler.txt", big);
    char ga[160], fp[160];
    snprintf(ga, sizeof ga, "%s/gap", dir);
    snprintf(fp, sizeof fp, "%s/filler.txt", dir);
    const char *pa[1] = {ga}, *pf[1] = {fp};
    rag_kb_opts_t fo = {.strategy = "fixed", .size = 8, .overlap = 0};
    rag_add_opts_t fao = {.kb = &fo};
    CHECK_EQ_INT(rag_add(r, "gap", pa, 1, NULL, &st, err, sizeof err), 0);
    CHECK_EQ_INT(rag_add(r, "filler", pf, 1, &fao, &st, err, sizeof err), 0);
    CHECK(st.chunks > 5000);
    write_file("gap/b.md", "# Delta\n\nquorum journal cursor trigger\n");
    CHECK_EQ_INT(rag_add(r, "gap", pa, 1, NULL, &st, err, sizeof err), 0);
    CHECK_EQ_INT(st.updated, 1);
    sqlite3_stmt *sp = NULL;
    CHECK_EQ_INT(sqlite3_prepare_v2(r->db,
                                    "SELECT max(c.id) - min(c.id), count(*) FROM kb_chunks c "
                                    "JOIN kb k ON k.id = c.kb_id WHERE k.name = 'gap'",
                                    -1, &sp, NULL),
                 SQLITE_OK);
    CHECK(sqlite3_step(sp) == SQLITE_ROW &&
          sqlite3_column_int64(sp, 0) > 8 * sqlite3_column_int64(sp, 1) + 4096);
    sqlite3_finalize(sp);
    check_bm25_as_sql(r, "gap", "quorum cursor", "\"quorum\" OR \"cursor\"", NULL);
    rag_close(r);
}

static void test_int8_and_eval(void)
{
    rag_t *r = open_fresh("kb8.db");
    if (!r)
        return;
    char p[128], err[512] = "";
    snprintf(p, sizeof p, "%s/docs", dir);
    const char *paths[1] = {p};
    rag_kb_opts_t ko = {.quant = "int8", .dim = 128, .overlap = -1};
    rag_add_opts_t ao = {.kb = &ko};
    rag_add_stats_t st;
    CHECK_EQ_INT(rag_add(r, "q", paths, 1, &ao, &st, err, sizeof err), 0);
    rag_query_t q = {.text = "write ahead log readers writers", .mode = RAG_VECTOR, .k = 2};
    rag_hits_t h;
    CHECK_EQ_INT(rag_search(r, "q", &q, &h, err, sizeof err), 0);
    CHECK(h.n >= 1 && strstr(h.v[0].path, "wal.md"));
    CHECK(h.n >= 1 && h.v[0].score > 0.1 && h.v[0].score <= 1.0);
    /* the scan kernel's score is the int8 dot product of the stored row and the query */
    if (h.n >= 1) {
        float qv[128];
        rag_embed_offline(q.text, 128, qv);
        sqlite3_stmt *s = NULL;
        CHECK_EQ_INT(sqlite3_prepare_v2(r->db, "SELECT vec FROM kb_chunks WHERE id = ?1", -1, &s,
                                        NULL),
                     SQLITE_OK);
        sqlite3_bind_int64(s, 1, h.v[0].chunk_id);
        CHECK_EQ_INT(sqlite3_step(s), SQLITE_ROW);
        CHECK_EQ_INT(sqlite3_column_bytes(s, 0), 128);
        const int8_t *row = sqlite3_column_blob(s, 0);
        int32_t dot = 0;
        for (int i = 0; row && i < 128; i++) {
            float x = qv[i] * 127.0f;
            int8_t qi = (int8_t)(x > 127 ? 127 : x < -127 ? -127 : (x >= 0 ? x + 0.5f : x - 0.5f));
            dot += (int32_t)row[i] * qi;
        }
        CHECK(fabs(h.v[0].score - (double)((float)dot * (1.0f / (127.0f * 127.0f)))) < 1e-6);
        sqlite3_finalize(s);
    }
    rag_hits_clear(&h);
    write_file("q.jsonl", "{\"q\": \"readers block writers?\", \"pages\": [\"wal.md\"]}\n"
                          "{\"q\": \"cascading deletes\", \"pages\": [\"docs/fk.md\"]}\n");
    snprintf(p, sizeof p, "%s/q.jsonl", dir);
    json_object *res = NULL, *modes, *m, *v;
    CHECK_EQ_INT(rag_eval(r, "q", p, &res, err, sizeof err), 0);
    CHECK(json_object_object_get_ex(res, "modes", &modes) &&
          json_object_object_get_ex(modes, "keyword", &m) &&
          json_object_object_get_ex(m, "recall@1", &v) && json_object_get_double(v) == 1.0);
    CHECK(json_object_object_get_ex(m, "mrr", &v) && json_object_get_double(v) == 1.0);
    json_object_put(res);
    write_file("bad.jsonl", "{\"q\": \"x\"}\n");
    snprintf(p, sizeof p, "%s/bad.jsonl", dir);
    CHECK_EQ_INT(rag_eval(r, "q", p, &res, err, sizeof err), ERR_INVAL);
    CHECK(strstr(err, "bad.jsonl:1"));
    rag_close(r);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/agentd-test-rag-%d", (int)getpid());
    mkdir(dir, 0755);
    RUN(test_markdown_blocks);
    RUN(test_html_drops_chrome);
    RUN(test_text_check);
    RUN(test_chunk_strategies);
    RUN(test_offline_embedder);
    RUN(test_search_modes);
    RUN(test_bm25_as_fts5);
    RUN(test_int8_and_eval);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", dir);
    return check_report();
}
