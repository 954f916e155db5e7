/* cert — the one-page PDF certificate; see cert.h. */
#include "cert.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <stdio.h>
#include <string.h>

#define PAGE_W 595.0 /* A4 in points */
#define PAGE_H 842.0
#define MARGIN 48.0
#define LINE 15.0
#define MAX_ATTEMPT_LINES 8 /* more would not fit on the page: the rest are counted */

struct page {
    cairo_t *cr;
    double y;
};

static const char *get(const json_t *rec, const char *obj, const char *key)
{
    const json_t *o = obj ? json_object_get(rec, obj) : rec;
    const char *v = json_string_value(json_object_get(o, key));
    return v && *v ? v : "not known";
}

static void text(struct page *p, double x, double size, int bold, const char *s)
{
    cairo_select_font_face(p->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(p->cr, size);
    cairo_move_to(p->cr, x, p->y);
    cairo_show_text(p->cr, s);
}

static void field(struct page *p, const char *label, const char *value)
{
    text(p, MARGIN, 9.5, 1, label);
    text(p, MARGIN + 150, 9.5, 0, value);
    p->y += LINE;
}

static void heading(struct page *p, const char *s)
{
    p->y += 6;
    text(p, MARGIN, 11, 1, s);
    p->y += 4;
    cairo_move_to(p->cr, MARGIN, p->y);
    cairo_line_to(p->cr, PAGE_W - MARGIN, p->y);
    cairo_set_line_width(p->cr, 0.5);
    cairo_stroke(p->cr);
    p->y += LINE;
}

static void attempts(struct page *p, const json_t *list)
{
    size_t i;
    const json_t *a;
    json_array_foreach(list, i, a) {
        char line[512];
        if (i == MAX_ATTEMPT_LINES) {
            snprintf(line, sizeof line, "... and %zu more (the JSON record lists them all)",
                     json_array_size(list) - i);
            text(p, MARGIN, 8.5, 0, line);
            p->y += LINE;
            break;
        }
        snprintf(line, sizeof line, "#%lld  %s %s  %s .. %s  %s%s%s",
                 (long long)json_integer_value(json_object_get(a, "n")), get(a, NULL, "station"),
                 get(a, NULL, "port"), get(a, NULL, "started"), get(a, NULL, "ended"),
                 get(a, NULL, "outcome"), *json_string_value(json_object_get(a, "error_class")) ? ": " : "",
                 json_string_value(json_object_get(a, "error_class")));
        text(p, MARGIN, 8.5, 0, line);
        p->y += LINE;
    }
}

static void draw(struct page *p, const json_t *rec)
{
    char buf[512];
    p->y = MARGIN + 10;
    text(p, MARGIN, 18, 1, "Certificate of Sanitization");
    p->y += 18;
    snprintf(buf, sizeof buf, "NIST SP 800-88 Rev. 1 Appendix G fields; R2v3 Appendix B data sanitization record. "
             "Job %lld.", (long long)json_integer_value(json_object_get(json_object_get(rec, "job"), "id")));
    text(p, MARGIN, 8.5, 0, buf);
    p->y += LINE;
    heading(p, "Media");
    field(p, "Manufacturer", get(rec, "device", "manufacturer"));
    snprintf(buf, sizeof buf, "%s (%s)", get(rec, "device", "model"), get(rec, "device", "marketing_name"));
    field(p, "Model", buf);
    field(p, "Serial number", get(rec, "device", "serial"));
    field(p, "IMEI", get(rec, "device", "imei"));
    field(p, "ECID", get(rec, "device", "ecid"));
    field(p, "Media type", get(rec, NULL, "media_type"));
    heading(p, "Sanitization");
    field(p, "Method", get(rec, "sanitization", "method"));
    snprintf(buf, sizeof buf, "iOS %s (%s)", get(rec, "firmware", "version"), get(rec, "firmware", "build"));
    field(p, "Firmware installed", buf);
    field(p, "IPSW SHA-256", get(rec, "firmware", "sha256"));
    field(p, "Tool", get(rec, "tools", "flashrack"));
    field(p, "Agent", get(rec, "tools", "agent"));
    field(p, "Restore engine", get(rec, "tools", "engine"));
    field(p, "libimobiledevice", get(rec, "tools", "libimobiledevice"));
    field(p, "Verification", get(rec, "verification", "result"));
    heading(p, "Who, where, when");
    field(p, "Operator", get(rec, NULL, "operator"));
    field(p, "Site", get(rec, NULL, "site"));
    snprintf(buf, sizeof buf, "%s, port %s", get(rec, NULL, "station"), get(rec, NULL, "port"));
    field(p, "Station", buf);
    field(p, "Started", get(rec, NULL, "started"));
    field(p, "Ended", get(rec, NULL, "ended"));
    snprintf(buf, sizeof buf, "%lld s", (long long)json_integer_value(json_object_get(rec, "duration_s")));
    field(p, "Duration", buf);
    heading(p, "Attempts");
    attempts(p, json_object_get(rec, "attempts"));
    heading(p, "Result");
    field(p, "Result", get(rec, NULL, "result"));
    field(p, "Destination", get(rec, NULL, "destination"));
    field(p, "Record signed", get(rec, NULL, "signed_at"));
    p->y = PAGE_H - MARGIN;
    text(p, MARGIN, 7.5, 0, "The signed JSON record is the evidence: 'flashrack record verify FILE' checks it "
         "offline against the controller's record key.");
}

void cert_done(void)
{
    cairo_debug_reset_static_data();
    FcFini();
}

int cert_pdf(const json_t *rec, const char *path, char *err, size_t errlen)
{
    cairo_surface_t *s = cairo_pdf_surface_create(path, PAGE_W, PAGE_H);
    cairo_t *cr = cairo_create(s);
    struct page p = { cr, 0 };
    cairo_set_source_rgb(cr, 0, 0, 0);
    draw(&p, rec);
    cairo_show_page(cr);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_finish(s);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "cannot write '%s': %s", path, cairo_status_to_string(st));
        return -1;
    }
    return 0;
}
