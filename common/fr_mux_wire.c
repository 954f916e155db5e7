/* fr_mux_wire — usbmuxd and lockdownd framing; see fr_mux_wire.h. */
#include "fr_mux_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A plist from untrusted bytes, kept only when it is a dictionary. */
static plist_t dict_from(const uint8_t *data, size_t n, int xml_only)
{
    plist_t p = NULL;
    if (n == 0 || n > UINT32_MAX)
        return NULL;
    if (xml_only)
        plist_from_xml((const char *)data, (uint32_t)n, &p);
    else
        plist_from_memory((const char *)data, (uint32_t)n, &p);
    if (p && plist_get_node_type(p) != PLIST_DICT) {
        plist_free(p);
        p = NULL;
    }
    return p;
}

enum mux_parse mux_wire_parse(const uint8_t *buf, size_t len, struct mux_header *hdr,
                              plist_t *dict, size_t *used, char *err, size_t errlen)
{
    *dict = NULL;
    *used = 0;
    if (len < MUX_HEADER_LEN)
        return MUX_PARSE_NEED_MORE;
    hdr->length = le32(buf);
    hdr->version = le32(buf + 4);
    hdr->message = le32(buf + 8);
    hdr->tag = le32(buf + 12);
    if (hdr->length < MUX_HEADER_LEN || hdr->length > MUX_MAX_MESSAGE) {
        snprintf(err, errlen, "message length %u (expected %d to %u bytes)", hdr->length,
                 MUX_HEADER_LEN, MUX_MAX_MESSAGE);
        return MUX_PARSE_FATAL;
    }
    if (len < hdr->length)
        return MUX_PARSE_NEED_MORE;
    *used = hdr->length;
    if (hdr->version != MUX_VERSION_PLIST || hdr->message != MUX_MESSAGE_PLIST) {
        snprintf(err, errlen, "version %u message %u (expected version 1 message 8, a plist)",
                 hdr->version, hdr->message);
        return MUX_PARSE_SKIP;
    }
    *dict = dict_from(buf + MUX_HEADER_LEN, hdr->length - MUX_HEADER_LEN, 1);
    if (!*dict) {
        snprintf(err, errlen, "%u-byte payload is not an XML plist dictionary",
                 hdr->length - MUX_HEADER_LEN);
        return MUX_PARSE_FATAL; /* usbmuxd closes such a client too */
    }
    return MUX_PARSE_OK;
}

enum mux_parse lockdown_wire_parse(const uint8_t *buf, size_t len, plist_t *dict, size_t *used,
                                   char *err, size_t errlen)
{
    *dict = NULL;
    *used = 0;
    if (len < 4)
        return MUX_PARSE_NEED_MORE;
    uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (n == 0 || n > LOCKDOWN_MAX_MESSAGE) {
        snprintf(err, errlen, "lockdown frame of %u bytes (expected 1 to %u)", n,
                 LOCKDOWN_MAX_MESSAGE);
        return MUX_PARSE_FATAL;
    }
    if (len - 4 < n)
        return MUX_PARSE_NEED_MORE;
    *used = 4 + (size_t)n;
    *dict = dict_from(buf + 4, n, 0);
    if (!*dict) {
        snprintf(err, errlen, "%u-byte lockdown frame is not a plist dictionary", n);
        return MUX_PARSE_FATAL;
    }
    return MUX_PARSE_OK;
}

static int frame(plist_t dict, size_t head, uint8_t **out, size_t *outlen)
{
    char *xml = NULL;
    uint32_t n = 0;
    plist_to_xml(dict, &xml, &n);
    uint8_t *b = xml ? malloc(head + n) : NULL;
    if (!b) {
        free(xml);
        return -1;
    }
    memcpy(b + head, xml, n);
    free(xml);
    *out = b;
    *outlen = head + n;
    return 0;
}

int mux_wire_encode(uint32_t tag, plist_t dict, uint8_t **out, size_t *outlen)
{
    if (frame(dict, MUX_HEADER_LEN, out, outlen) < 0)
        return -1;
    put_le32(*out, (uint32_t)*outlen);
    put_le32(*out + 4, MUX_VERSION_PLIST);
    put_le32(*out + 8, MUX_MESSAGE_PLIST);
    put_le32(*out + 12, tag);
    return 0;
}

int lockdown_wire_encode(plist_t dict, uint8_t **out, size_t *outlen)
{
    if (frame(dict, 4, out, outlen) < 0)
        return -1;
    uint32_t n = (uint32_t)(*outlen - 4);
    (*out)[0] = (uint8_t)(n >> 24);
    (*out)[1] = (uint8_t)(n >> 16);
    (*out)[2] = (uint8_t)(n >> 8);
    (*out)[3] = (uint8_t)n;
    return 0;
}

const char *mux_dict_string(plist_t dict, const char *key)
{
    plist_t n = plist_dict_get_item(dict, key);
    return n && plist_get_node_type(n) == PLIST_STRING ? plist_get_string_ptr(n, NULL) : NULL;
}

int mux_dict_uint(plist_t dict, const char *key, uint64_t *out)
{
    plist_t n = plist_dict_get_item(dict, key);
    if (!n || plist_get_node_type(n) != PLIST_UINT)
        return -1;
    plist_get_uint_val(n, out);
    return 0;
}
