/*
 * cli_lws_stdin.c - the stdin driver of hp-fake-client's adapter
 * (cli_lws_int.h).
 *
 * stdin is adopted as a RAW file descriptor by cli_lws_run(), so command
 * lines are read by the same loop without blocking it.  Inputs: stdin
 * bytes (clw_stdin_cb).  Outputs: one cli_drv_line() call per complete
 * line (cli_main.c), an "error" line for an overlong one, A.quit at end of
 * stdin or on a quit command.  Ownership: the partial line is A.line
 * (freed by cli_lws_run()).
 */
#define _GNU_SOURCE
#include "cli_lws_int.h"

/* ---- stdin -------------------------------------------------------------------- */

/* One complete command line (without its '\n'). */
static void run_line(const char *line, size_t len)
{
    if (A.quit)
        return;
    if (cli_drv_line(A.core, line, len))
        A.quit = 1;
    clw_drain();
}

/*
 * Feed stdin bytes: every '\n' ends a command.  A line longer than MAX_LINE
 * is answered with one error line and skipped up to its newline.
 */
static void feed_stdin(const char *buf, size_t n)
{
    for (size_t i = 0; i < n && !A.quit; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (A.line_overflow) {
                A.line_overflow = 0;
                cli_drv_emit(json_pack("{s:s, s:n, s:s}", "kind", "error", "cmd", "message",
                                       "command line too long"));
            } else {
                run_line(A.line ? A.line : "", A.line_len);
            }
            A.line_len = 0;
            continue;
        }
        if (A.line_overflow)
            continue;
        if (clw_buf_append(&A.line, &A.line_len, &A.line_cap, &ch, 1, MAX_LINE) != 0) {
            A.line_overflow = 1;
            A.line_len = 0;
        }
    }
}

/* End of stdin: a last line without '\n' still counts; then quit. */
static void stdin_eof(void)
{
    if (!A.quit && A.line_len > 0 && !A.line_overflow)
        run_line(A.line, A.line_len);
    A.line_len = 0;
    A.quit = 1;
}

/*
 * stdin readable: one read() (poll said it will not block), then run the
 * complete lines.  End of file or a read error = quit.  On a hang-up lws
 * may report the close before the last bytes were read: read them then.
 */
int clw_stdin_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    (void)wsi;
    (void)user;
    (void)in;
    (void)len;
    char buf[8192];
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE: {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            return 0;
        if (n <= 0) {
            stdin_eof();
            return -1;
        }
        feed_stdin(buf, (size_t)n);
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        if (!A.quit) {
            ssize_t n;
            while (!A.quit && (n = read(STDIN_FILENO, buf, sizeof buf)) > 0)
                feed_stdin(buf, (size_t)n);
            stdin_eof();
        }
        return 0;
    default:
        return 0;
    }
}
