/* scanner.c: prompt, step-marker and RR_RESULT detection in console output. */
#include "scanner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_LINE_MAX   4096u   /* longest line examined for markers/results */
#define SCAN_WINDOW_MAX 8192u   /* output kept for prompt search */
#define SCAN_NEEDLE_MAX 256u    /* longest prompt */
#define SCAN_TOKEN_MAX  64u

struct _rr_scanner_t {
    rr_scan_result_fn *on_result;
    void *arg;
    char line[SCAN_LINE_MAX + 1];
    size_t line_len;
    char **prompts;
    size_t prompt_count;
    char window[SCAN_WINDOW_MAX];
    size_t window_len;
    int prompt_seen;
    char marker[SCAN_TOKEN_MAX + 16];   /* "RR_END_42_<token>:" or "" */
    bool marker_seen;
    int marker_code;
};

rr_scanner_t *rr_scanner_new(rr_scan_result_fn *on_result, void *arg)
{
    rr_scanner_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->on_result = on_result;
    self->arg = arg;
    self->prompt_seen = -1;
    return self;
}

static void free_prompts(rr_scanner_t *self)
{
    for (size_t i = 0; i < self->prompt_count; i++)
        free(self->prompts[i]);
    free(self->prompts);
    self->prompts = NULL;
    self->prompt_count = 0;
}

void rr_scanner_destroy(rr_scanner_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free_prompts(*self_p);
    free(*self_p);
    *self_p = NULL;
}

int rr_scanner_arm_prompt(rr_scanner_t *self, const char *const *prompts, size_t count)
{
    free_prompts(self);
    self->prompt_seen = -1;
    self->window_len = 0;
    self->prompts = calloc(count ? count : 1, sizeof *self->prompts);
    if (!self->prompts)
        return -1;
    for (size_t i = 0; i < count; i++) {
        size_t n = strnlen(prompts[i], SCAN_NEEDLE_MAX);
        self->prompts[i] = strndup(prompts[i], n);
        if (!self->prompts[i]) {
            free_prompts(self);
            return -1;
        }
        self->prompt_count++;
    }
    return 0;
}

int rr_scanner_arm_marker(rr_scanner_t *self, const char *token)
{
    if (strlen(token) > SCAN_TOKEN_MAX)
        return -1;
    snprintf(self->marker, sizeof self->marker, "RR_END_42_%s:", token);
    self->marker_seen = false;
    self->marker_code = 0;
    return 0;
}

void rr_scanner_marker_command(const char *token, char *buf, size_t len)
{
    snprintf(buf, len, "echo RR_END_$((6*7))_%s:$?", token);
}

/* Split "key=value key=value" of an RR_RESULT line (modified in place). */
static void parse_result(rr_scanner_t *self, char *text)
{
    rr_scan_result_t r = { 0 };
    char *save = NULL;
    for (char *tok = strtok_r(text, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *val = eq + 1;
        if (!strcmp(tok, "name"))
            r.name = val;
        else if (!strcmp(tok, "result"))
            r.result = val;
        else if (!strcmp(tok, "measurement"))
            r.measurement = val;
        else if (!strcmp(tok, "units"))
            r.units = val;
    }
    if (!r.name || !*r.name || !r.result)
        return;
    if (strcmp(r.result, "pass") && strcmp(r.result, "fail") && strcmp(r.result, "skip"))
        return;
    if (self->on_result)
        self->on_result(self->arg, &r);
}

static void scan_line(rr_scanner_t *self)
{
    char *line = self->line;
    line[self->line_len] = '\0';
    if (self->marker[0] && !self->marker_seen) {
        char *hit = strstr(line, self->marker);
        if (hit) {
            char *end = NULL;
            long code = strtol(hit + strlen(self->marker), &end, 10);
            if (end != hit + strlen(self->marker)) {
                self->marker_seen = true;
                self->marker_code = (int)code;
            }
        }
    }
    while (*line == ' ' || *line == '\t')
        line++;
    if (!strncmp(line, "RR_RESULT ", 10))
        parse_result(self, line + 10);
}

static void feed_lines(rr_scanner_t *self, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\n') {
            scan_line(self);
            self->line_len = 0;
        } else if (c != '\r' && c != '\0' && self->line_len < SCAN_LINE_MAX) {
            self->line[self->line_len++] = c;
        }
    }
}

static void feed_window(rr_scanner_t *self, const char *data, size_t len)
{
    if (!self->prompt_count || self->prompt_seen >= 0)
        return;
    while (len) {
        if (self->window_len == SCAN_WINDOW_MAX) {
            /* keep enough tail for a prompt straddling the cut */
            memmove(self->window, self->window + SCAN_WINDOW_MAX - SCAN_NEEDLE_MAX,
                    SCAN_NEEDLE_MAX);
            self->window_len = SCAN_NEEDLE_MAX;
        }
        size_t n = SCAN_WINDOW_MAX - self->window_len;
        if (n > len)
            n = len;
        memcpy(self->window + self->window_len, data, n);
        self->window_len += n;
        data += n;
        len -= n;
        for (size_t i = 0; i < self->prompt_count; i++) {
            if (self->prompts[i][0]
                && memmem(self->window, self->window_len, self->prompts[i],
                          strlen(self->prompts[i]))) {
                self->prompt_seen = (int)i;
                return;
            }
        }
    }
}

void rr_scanner_feed(rr_scanner_t *self, const char *data, size_t len)
{
    feed_window(self, data, len);
    feed_lines(self, data, len);
}

int rr_scanner_prompt(const rr_scanner_t *self)
{
    return self->prompt_seen;
}

bool rr_scanner_marker(const rr_scanner_t *self, int *code)
{
    if (self->marker_seen && code)
        *code = self->marker_code;
    return self->marker_seen;
}
