/*
 * viewer: the interactive `agentd trace` screen (ncursesw). Three screens: the runs list,
 * a run's span tree with a waterfall timeline, and the detail of one span. Follow mode
 * polls the database every VIEWER_POLL_MS (the getch timeout doubles as the poll timer).
 *
 * This file holds the terminal side (start, colours, signals, restore), the key dispatch
 * and the loop; the screens are in viewer_list.c and viewer_run.c.
 *
 * Why ncursesw and not hand-written ANSI: terminfo gives correct sequences for whatever
 * terminal the user has (tmux, screen, xterm, the Linux console), KEY_RESIZE comes for
 * free, wide characters are measured correctly, and endwin() restores the terminal exactly.
 * The one thing it does not do is restore the terminal on a crash; the crash handler here
 * does that with async-signal-safe calls only.
 *
 * Global state: the signal handlers need the saved terminal modes and a stop flag; those
 * few statics are the only process-wide mutable state, and only the handlers use them.
 */
#include "viewer_int.h"
#include "viewer_screen.h"

#include "cli/cli.h"
#include "err.h"

#include <curses.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <term.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static struct termios saved_tty;
static int saved_tty_ok;
static char reset_seq[256];
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* A crash: put the terminal back (modes, cursor, main screen), then die of the signal. */
static void on_crash_signal(int sig)
{
    if (saved_tty_ok)
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
    ssize_t w = write(STDOUT_FILENO, reset_seq, strlen(reset_seq));
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: getch returns and we exit cleanly */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_crash_signal;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
}

static void restore_signals(void)
{
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static void build_reset_seq(void)
{
    /* Terminfo's own strings for this terminal, precomputed for the crash handler. */
    const char *caps[] = {"sgr0", "cnorm", "rmcup"};
    size_t n = 0;
    reset_seq[0] = 0;
    for (size_t i = 0; i < 3; i++) {
        char *s = tigetstr((char *)caps[i]);
        if (s && s != (char *)-1 && n + strlen(s) + 3 < sizeof reset_seq) {
            memcpy(reset_seq + n, s, strlen(s));
            n += strlen(s);
        }
    }
    memcpy(reset_seq + n, "\r\n", 3);
}

int64_t vtui_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *vtui_fmt_count(int64_t n, char *buf, size_t len)
{
    if (n < 100000)
        snprintf(buf, len, "%lld", (long long)n);
    else if (n < 1000000)
        snprintf(buf, len, "%lldk", (long long)(n / 1000));
    else if (n < 100000000)
        snprintf(buf, len, "%.1fM", (double)n / 1e6);
    else
        snprintf(buf, len, "%lldM", (long long)(n / 1000000));
    return buf;
}

void vtui_say(tui_t *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->msg_until = vtui_mono_ns() + 4000000000LL;
}

attr_t vtui_pair(const tui_t *t, int p, attr_t fallback)
{
    return t->color ? (attr_t)COLOR_PAIR(p) : fallback;
}

int vtui_put(int y, int x, int maxw, const char *s, attr_t a)
{
    if (maxw <= 0 || !s)
        return 0;
    int cols;
    size_t n = vtui_clip(s, maxw, &cols);
    attron(a);
    mvaddnstr(y, x, s, (int)n);
    attroff(a);
    return cols;
}

void vtui_putf(int y, int x, int maxw, attr_t a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    vtui_put(y, x, maxw, buf, a);
}

void vtui_bar(const tui_t *t, int y, attr_t a)
{
    (void)t;
    attron(a);
    mvhline(y, 0, ' ', COLS);
    attroff(a);
}

static void next_error(tui_t *t)
{
    if (t->scr == SCR_LIST)
        vtui_list_next_failed(t);
    else
        vtui_run_next_error(t);
}

static void search_next(tui_t *t, int dir)
{
    if (!t->query[0])
        return;
    int found = t->scr == SCR_LIST ? vtui_list_search(t, dir) : vtui_run_search(t, dir);
    if (!found)
        vtui_say(t, "not found: %s", t->query);
}

/* Read the search text on the bottom line. Esc cancels. */
static void prompt(tui_t *t)
{
    char buf[sizeof t->query] = "";
    size_t n = 0;
    for (;;) {
        vtui_bar(t, LINES - 1, A_NORMAL);
        vtui_putf(LINES - 1, 0, COLS, A_BOLD, "/%s", buf);
        curs_set(1);
        refresh();
        int ch = getch();
        if (stop_signal)
            break;
        if (ch == ERR)
            continue;
        if (ch == 27) {
            n = 0;
            buf[0] = 0;
            break;
        }
        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
            break;
        if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && n > 0)
            buf[--n] = 0;
        else if (ch >= 32 && ch < 256 && ch != 127 && n + 1 < sizeof buf) {
            buf[n++] = (char)ch;
            buf[n] = 0;
        }
    }
    curs_set(0);
    if (n) {
        snprintf(t->query, sizeof t->query, "%s", buf);
        if (t->scr == SCR_DETAIL || t->scr == SCR_COMPARE)
            t->dtop = t->dtop > 0 ? t->dtop - 1 : t->det.n - 1;
        search_next(t, 1);
    }
}

void vtui_move_sel(int *sel, int n, int delta)
{
    *sel += delta;
    if (*sel >= n)
        *sel = n - 1;
    if (*sel < 0)
        *sel = 0;
}

int vtui_sel_key(int *sel, int n, int page, int ch)
{
    if (page < 1)
        page = 1;
    switch (ch) {
    case KEY_UP:
    case 'k': vtui_move_sel(sel, n, -1); return 1;
    case KEY_DOWN:
    case 'j': vtui_move_sel(sel, n, 1); return 1;
    case KEY_PPAGE: vtui_move_sel(sel, n, -page); return 1;
    case KEY_NPAGE: vtui_move_sel(sel, n, page); return 1;
    case KEY_HOME:
    case 'g': *sel = 0; return 1;
    case KEY_END:
    case 'G': vtui_move_sel(sel, n, n); return 1;
    default: return 0;
    }
}

static void key(tui_t *t, int ch)
{
    if (ch == '/') {
        prompt(t);
        return;
    }
    if (ch == 'n' || ch == 'N') {
        search_next(t, ch == 'n' ? 1 : -1);
        return;
    }
    if (ch == 'e' && t->scr != SCR_COMPARE && (t->scr != SCR_LIST || t->norder)) {
        next_error(t);
        return;
    }
    if (t->scr == SCR_LIST)
        vtui_list_key(t, ch);
    else if (t->scr == SCR_RUN)
        vtui_run_key(t, ch);
    else if (t->scr == SCR_COMPARE)
        vtui_compare_key(t, ch);
    else
        vtui_detail_key(t, ch);
}

static void draw(tui_t *t)
{
    erase();
    if (LINES < 6 || COLS < 30) {
        vtui_put(0, 0, COLS, "agentd trace: terminal too small (need 30x6); q quits", A_BOLD);
    } else if (t->scr == SCR_LIST) {
        vtui_list_draw(t);
    } else if (t->scr == SCR_RUN) {
        vtui_run_draw(t);
    } else if (t->scr == SCR_COMPARE) {
        vtui_compare_draw(t);
    } else {
        vtui_detail_draw(t);
    }
    refresh();
}

static void colors(tui_t *t)
{
    const char *nc = getenv("NO_COLOR");
    t->color = !(nc && *nc) && has_colors();
    if (!t->color)
        return;
    start_color();
    use_default_colors();
    init_pair(C_ERR, COLOR_RED, -1);
    init_pair(C_OK, COLOR_GREEN, -1);
    init_pair(C_CHAT, COLOR_CYAN, -1);
    init_pair(C_TOOL, COLOR_YELLOW, -1);
    init_pair(C_STATE, COLOR_BLUE, -1);
    init_pair(C_POINT, COLOR_MAGENTA, -1);
    init_pair(C_HEAD, COLOR_BLACK, COLOR_CYAN);
    init_pair(C_DIM, COLOR_WHITE, -1);
    init_pair(C_MATCH, COLOR_BLACK, COLOR_YELLOW);
}

int viewer_tui(store_t *st, const char *db_path, const char *run_id, int follow)
{
    tui_t t;
    memset(&t, 0, sizeof t);
    t.st = st;
    t.db_path = db_path;
    t.follow = follow;
    t.points = 1;
    t.utf8 = MB_CUR_MAX > 1;
    if (run_id) {
        int rc = vtui_run_open(&t, run_id);
        if (rc) {
            fprintf(stderr, "agentd trace: %s\n", t.msg);
            vtui_run_close(&t);
            return rc == ERR_NOMEM ? CLI_INTERNAL : CLI_USAGE;
        }
        t.direct = 1;
    } else {
        vtui_list_load(&t);
    }
    stop_signal = 0;
    saved_tty_ok = tcgetattr(STDIN_FILENO, &saved_tty) == 0;
    install_signals();
    /* Check the terminal description first (a failed newterm leaks inside ncurses), and
     * use newterm, not initscr, which exits the process when the terminal is unusable. */
    int term_err = 0;
    SCREEN *scr = NULL;
    if (setupterm(NULL, STDOUT_FILENO, &term_err) == OK) {
        del_curterm(cur_term);
        scr = newterm(NULL, stdout, stdin);
    }
    if (!scr) {
        restore_signals();
        vtui_run_close(&t);
        vtui_list_free(&t);
        fprintf(stderr, "agentd trace: cannot start the terminal UI (TERM=%s); use --plain\n",
                getenv("TERM") ? getenv("TERM") : "");
        return CLI_USAGE;
    }
    set_term(scr);
    build_reset_seq();
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    timeout(VIEWER_POLL_MS);
    colors(&t);
    int64_t last_open = -1;
    while (!t.quit && !stop_signal) {
        draw(&t);
        if (t.m && t.open_t0 != last_open) {
            /* The open-time figure: from reading the run to the first full screen. */
            int64_t ms = (vtui_mono_ns() - t.open_t0) / 1000000;
            last_open = t.open_t0;
            vtui_say(&t, "opened %d events, %d spans in %lld ms%s", t.m->nevs, t.m->nspans,
                     (long long)ms, t.m->errors ? "   (e: jump to the next error)" : "");
            draw(&t);
        }
        int ch = getch();
        if (ch == ERR) {
            if ((t.scr == SCR_RUN || t.scr == SCR_DETAIL) && t.follow && t.m) {
                if (vtui_run_poll(&t) && t.scr == SCR_DETAIL)
                    vtui_detail_build(&t);
            } else if (t.scr == SCR_LIST && vtui_mono_ns() - t.list_at_ns > 1000000000LL) {
                vtui_list_load(&t);
            }
            continue;
        }
        if (ch == KEY_RESIZE) {
            if (t.scr == SCR_DETAIL)
                vtui_detail_build(&t);
            else if (t.scr == SCR_COMPARE)
                vtui_compare_build(&t);
            continue;
        }
        key(&t, ch);
    }
    endwin();
    delscreen(scr);
    restore_signals();
    vlines_clear(&t.det);
    free(t.det.v);
    vtui_run_close(&t);
    vtui_list_free(&t);
    free(t.runs);
    free(t.order);
    return stop_signal && stop_signal != SIGINT ? CLI_FAILED : CLI_OK;
}
