/* bench_sol.c: one node's Serial-over-LAN console through worker/sol.h,
 * against a stock ipmi_sim BMC of the emulated rack (tests/rig/rig.py).
 *
 * output  the node prints 1 MiB (`yes ... | head -c 1048576` between two
 *         markers the typed command cannot echo); the console read through
 *         SOL is compared byte for byte with what the node printed (the rig's
 *         console.out): sol_output_KBps (info), sol_lost_bytes (= 0).
 * typing  2,000 characters typed with rr_sol_type at the test shell delay of
 *         5 ms; the rig logs when each byte reached the node's serial line
 *         (console.in.tsv, CLOCK_MONOTONIC): the mean interval between
 *         characters must be within 10 % of 5 ms (sol_type_interval_mean_ms),
 *         p99 as info.
 * --smoke: 16 KiB and 200 characters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipmi.h"
#include "report.h"
#include "rig.h"
#include "sol.h"

#define OUTPUT_BYTES   (1024 * 1024)
#define TYPED_CHARS    2000
#define TYPE_DELAY_MS  5
#define SOL_TIMEOUT_MS 15000
#define PROMPT_WAIT_MS 20000
#define OUTPUT_WAIT_MS 300000

typedef struct {
    char *data;
    size_t len, cap;
} buffer_t;

static void s_sink(void *arg, const char *data, size_t len)
{
    buffer_t *buf = arg;
    if (buf->len + len + 1 > buf->cap) {
        size_t cap = (buf->len + len + 1) * 2;
        char *grown = realloc(buf->data, cap);
        if (!grown)
            return;                         /* counted as lost: the comparison shows it */
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
}

/* The bytes between the line holding BEGIN and END in TEXT (length LEN). */
static const char *s_between(const char *text, size_t len, size_t *out_len)
{
    const char *begin = memmem(text, len, "RR_42_BEGIN", 11);
    const char *start = begin ? memchr(begin, '\n', len - (size_t) (begin - text)) : NULL;
    if (!start)
        return NULL;
    start++;
    const char *end = memmem(start, len - (size_t) (start - text), "RR_42_END", 9);
    if (!end)
        return NULL;
    *out_len = (size_t) (end - start);
    return start;
}

static int s_output(rr_rig_t *rig, rr_sol_t *sol, size_t bytes)
{
    char command[256];
    snprintf(command, sizeof command,
             "echo RR_$((6*7))_BEGIN; yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTU"
             "VWXYZ | head -c %zu; echo; echo RR_$((6*7))_END\n", bytes);
    buffer_t got = { 0 };
    const char *needles[] = { "RR_42_BEGIN" }, *ends[] = { "RR_42_END" };
    int rc = -1;
    if (rr_sol_type(sol, command, strlen(command), 0, s_sink, &got) != 0
        || rr_sol_expect(sol, needles, 1, PROMPT_WAIT_MS, s_sink, &got) != 0) {
        fprintf(stderr, "bench_sol: the node did not start printing: %s\n", rr_sol_error(sol));
        goto out;
    }
    double start = bench_now();
    if (rr_sol_expect(sol, ends, 1, OUTPUT_WAIT_MS, s_sink, &got) != 0) {
        fprintf(stderr, "bench_sol: no end marker within %d s: %s\n", OUTPUT_WAIT_MS / 1000,
                rr_sol_error(sol));
        goto out;
    }
    double seconds = bench_now() - start;
    size_t printed_len = 0, sol_len = 0, console_len = 0;
    char *console = rr_rig_console_out(rig, 0, &console_len);
    const char *printed = console ? s_between(console, console_len, &printed_len) : NULL;
    const char *received = s_between(got.data, got.len, &sol_len);
    if (printed && received) {
        size_t lost = printed_len > sol_len ? printed_len - sol_len : 0;
        bool same = printed_len == sol_len && memcmp(printed, received, sol_len) == 0;
        if (!same && lost == 0)
            lost = 1;                       /* same length, different bytes: still a loss */
        bench_info("sol_output_KBps", (double) sol_len / seconds / 1000.0, "KB/s");
        bench_result("sol_lost_bytes", (double) lost, "bytes", "<=", 0);
        rc = 0;
    }
    else
        fprintf(stderr, "bench_sol: markers missing (console %s, SOL %s)\n",
                printed ? "ok" : "no", received ? "ok" : "no");
    free(console);
out:
    free(got.data);
    return rc;
}

static int s_typing(rr_rig_t *rig, rr_sol_t *sol, size_t chars)
{
    char *text = malloc(chars + 1);
    if (!text)
        return -1;
    memset(text, 'a', chars);
    memcpy(text, ": ", 2);                  /* a shell no-op: the line does nothing */
    text[chars - 1] = '\n';
    size_t before = 0;
    free(rr_rig_console_in(rig, 0, &before));
    buffer_t echo = { 0 };
    int rc = rr_sol_type(sol, text, chars, TYPE_DELAY_MS, s_sink, &echo);
    free(text);
    free(echo.data);
    if (rc != 0) {
        fprintf(stderr, "bench_sol: typing: %s\n", rr_sol_error(sol));
        return -1;
    }
    rr_rig_rx_t *rx = NULL;
    size_t count = 0;
    for (int i = 0; i < 100 && count < before + chars; i++) {   /* the rig logs as it reads */
        free(rx);
        rx = rr_rig_console_in(rig, 0, &count);
        if (count < before + chars)
            usleep(50 * 1000);
    }
    if (!rx || count < before + chars) {
        fprintf(stderr, "bench_sol: the node received %zu of %zu characters\n",
                count > before ? count - before : 0, chars);
        free(rx);
        return -1;
    }
    double *gaps = calloc(chars, sizeof *gaps), sum = 0;
    size_t n = 0;
    for (size_t i = count - chars + 1; gaps && i < count; i++) {
        gaps[n] = (double) (rx[i].ns - rx[i - 1].ns) / 1e6;
        sum += gaps[n++];
    }
    free(rx);
    if (!gaps)
        return -1;
    bench_result_within("sol_type_interval_mean_ms", sum / (double) n, "ms",
                        TYPE_DELAY_MS * 0.9, TYPE_DELAY_MS * 1.1);
    bench_info("sol_type_interval_p99_ms", bench_percentile(gaps, n, 99), "ms");
    free(gaps);
    return 0;
}

/* Power the node on and wait for its shell prompt. */
static int s_boot(const rr_rig_node_t *node, rr_sol_t *sol)
{
    rr_ipmi_t *bmc = rr_ipmi_new(node->host, node->port, node->user, node->password, 5000, 3);
    int rc = bmc ? rr_ipmi_power(bmc, RR_POWER_ON) : -1;
    if (rc != 0)
        fprintf(stderr, "bench_sol: power on: %s\n", bmc ? rr_ipmi_error(bmc) : "no memory");
    rr_ipmi_destroy(&bmc);
    const char *prompts[] = { "# " };
    if (rc == 0 && rr_sol_expect(sol, prompts, 1, PROMPT_WAIT_MS, NULL, NULL) != 0) {
        fprintf(stderr, "bench_sol: no prompt: %s\n", rr_sol_error(sol));
        rc = -1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    bool smoke = bench_smoke(argc, argv);
    rr_rig_t *rig = rr_rig_start(1, "--hook " RR_RIG_HOOK);
    if (!rig)
        return 1;
    const rr_rig_node_t *node = rr_rig_node(rig, 0);
    char err[512];
    rr_sol_t *sol = rr_sol_open(node->host, node->port, node->user, node->password,
                                SOL_TIMEOUT_MS, err, sizeof err);
    int rc = sol ? 0 : -1;
    if (!sol)
        fprintf(stderr, "bench_sol: %s\n", err);
    if (rc == 0)
        rc = s_boot(node, sol);
    if (rc == 0)
        rc = s_output(rig, sol, smoke ? 16 * 1024 : OUTPUT_BYTES);
    if (rc == 0)
        rc = s_typing(rig, sol, smoke ? 200 : TYPED_CHARS);
    if (smoke)
        bench_note("sol: smoke run, 16 KiB printed, 200 characters typed");
    rr_sol_destroy(&sol);
    rr_rig_stop(&rig);
    if (rc != 0)
        fprintf(stderr, "bench_sol: failed\n");
    return rc == 0 ? 0 : 1;
}
