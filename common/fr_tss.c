/* fr_tss — the signing check; see fr_tss.h. */
#include "fr_tss.h"
#include "fr_err.h"
#include "fr_http.h"

#include <curl/curl.h>
#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX (1024 * 1024)

const char *fr_tss_verdict_name(enum fr_tss_verdict v)
{
    static const char *names[] = { "signed", "not_signed", "unreachable", "unexpected" };
    return v <= FR_TSS_UNEXPECTED ? names[v] : "unexpected";
}

int fr_tss_body(const struct fr_tss_request *req, char **out, size_t *len)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "@HostPlatformInfo", plist_new_string("mac"));
    plist_dict_set_item(d, "@VersionInfo", plist_new_string("libauthinstall-1033.0.2"));
    plist_dict_set_item(d, "@ApImg4Ticket", plist_new_bool(1));
    plist_dict_set_item(d, "ApECID", plist_new_uint(req->ecid));
    plist_dict_set_item(d, "ApChipID", plist_new_uint(req->chip_id));
    plist_dict_set_item(d, "ApBoardID", plist_new_uint(req->board_id));
    plist_dict_set_item(d, "ApProductionMode", plist_new_bool(1));
    plist_dict_set_item(d, "ApSecurityDomain", plist_new_uint(1));
    char *xml = NULL;
    uint32_t n = 0;
    plist_to_xml(d, &xml, &n);
    plist_free(d);
    if (!xml)
        return FR_ENOMEM;
    *out = xml;
    *len = n;
    return 0;
}

/* The value of KEY= in an "A=1&B=2" answer, up to '&'. */
static int field(const char *body, const char *key, char *out, size_t len)
{
    size_t k = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, k) == 0 && p[k] == '=') {
            size_t v = strcspn(p + k + 1, "&");
            snprintf(out, len, "%.*s", (int)v, p + k + 1);
            return 1;
        }
    }
    return 0;
}

enum fr_tss_verdict fr_tss_classify(const char *body, char *detail, size_t len)
{
    char status[16] = "", message[256] = "";
    if (!body || !field(body, "STATUS", status, sizeof status)) {
        snprintf(detail, len, "answer without STATUS: %.80s", body ? body : "");
        return FR_TSS_UNEXPECTED;
    }
    field(body, "MESSAGE", message, sizeof message);
    snprintf(detail, len, "STATUS=%s%s%s", status, *message ? " " : "", message);
    if (strcmp(status, "0") == 0)
        return FR_TSS_SIGNED;
    if (strcmp(status, "94") == 0)
        return FR_TSS_NOT_SIGNED;
    return FR_TSS_UNEXPECTED;
}

int fr_tss_check(const struct fr_tss_request *req, enum fr_tss_verdict *verdict, char *detail,
                 size_t len)
{
    char *body = NULL;
    size_t blen = 0;
    if (fr_tss_body(req, &body, &blen) < 0)
        return FR_ENOMEM;
    CURL *h = curl_easy_init();
    struct fr_http_body a = { NULL, 0, ANSWER_MAX }; /* larger is not a TSS answer */
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: text/xml; charset=\"utf-8\"");
    curl_easy_setopt(h, CURLOPT_URL, req->url ? req->url : FR_TSS_APPLE_URL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)blen);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "InetURL/1.0");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fr_http_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
    CURLcode rc = curl_easy_perform(h);
    long http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    if (rc != CURLE_OK) {
        *verdict = FR_TSS_UNREACHABLE;
        snprintf(detail, len, "signing server: %s", curl_easy_strerror(rc));
    } else if (http >= 400) {
        *verdict = FR_TSS_UNREACHABLE;
        snprintf(detail, len, "signing server answered HTTP %ld", http);
    } else {
        *verdict = fr_tss_classify(a.data, detail, len);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    free(a.data);
    free(body);
    return 0;
}
