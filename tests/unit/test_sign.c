/* test_sign — canonical JSON (exact bytes), Ed25519 record keys (files, mode, ids), and
 * signed records: a round trip verifies, and every single changed byte of a signed line
 * fails, as does another key's public key; and a line recorded from a fixed key and record
 * (tests/fixtures/records: a test key, signed.line as the first signer wrote it) comes out
 * byte for byte, from fr_sign_record and from one fr_signer used again and again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_err.h"
#include "fr_sign.h"

static char *canon_of(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    assert_non_null(v);
    char *out = NULL, err[256] = "";
    size_t len = 0;
    assert_int_equal(fr_canon_json(v, &out, &len, err, sizeof err), 0);
    assert_int_equal(len, strlen(out));
    json_decref(v);
    return out;
}

static void canonical_form_is_exact(void **state)
{
    char *c = canon_of("{ \"b\" : 1, \"a\" : [true, false, null, -7, \"\"],\n"
                       "  \"B\": {\"z\": {}, \"y\": []}, \"ab\": 0 }");
    assert_string_equal(c, "{\"B\":{\"y\":[],\"z\":{}},\"a\":[true,false,null,-7,\"\"],\"ab\":0,\"b\":1}");
    free(c);
    /* escapes: only '"', '\' and control characters; '/' and UTF-8 stay as they are */
    c = canon_of("{\"s\": \"q\\\"b\\\\n\\nt\\tu\\u0001/\\u00e9\\u20ac\"}");
    assert_string_equal(c, "{\"s\":\"q\\\"b\\\\n\\nt\\tu\\u0001/\xc3\xa9\xe2\x82\xac\"}");
    free(c);
    c = canon_of("[9223372036854775807, -9223372036854775808]");
    assert_string_equal(c, "[9223372036854775807,-9223372036854775808]");
    free(c);
}

static void real_numbers_are_refused_by_path(void **state)
{
    json_t *v = json_pack("{s:{s:[i,f]}}", "unit", "times", 1, 2.5);
    char *out = (char *)"x", err[256] = "";
    assert_int_equal(fr_canon_json(v, &out, NULL, err, sizeof err), FR_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err, "$.unit.times[1]"));
    json_decref(v);
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/fr-test-sign-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

struct keys {
    char *dir;
    char key[256], pub[256];
    EVP_PKEY *priv, *public;
};

static struct keys *make_keys(void)
{
    struct keys *k = calloc(1, sizeof *k);
    char err[512] = "";
    k->dir = tmpdir();
    snprintf(k->key, sizeof k->key, "%s/record.key", k->dir);
    snprintf(k->pub, sizeof k->pub, "%s/record.pub", k->dir);
    assert_int_equal(fr_sign_key_generate(k->key, k->pub, 0, err, sizeof err), 0);
    assert_int_equal(fr_sign_key_load(k->key, &k->priv, err, sizeof err), 0);
    assert_int_equal(fr_sign_pub_load(k->pub, &k->public, err, sizeof err), 0);
    return k;
}

static void free_keys(struct keys *k)
{
    EVP_PKEY_free(k->priv);
    EVP_PKEY_free(k->public);
    unlink(k->key);
    unlink(k->pub);
    rmdir(k->dir);
    free(k->dir);
    free(k);
}

static void key_files_are_private_and_not_overwritten(void **state)
{
    struct keys *k = make_keys();
    struct stat st;
    assert_int_equal(stat(k->key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(k->pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    char a[FR_SIGN_KEY_ID_LEN + 1], b[FR_SIGN_KEY_ID_LEN + 1], err[512] = "";
    assert_int_equal(fr_sign_key_id(k->priv, a), 0);
    assert_int_equal(fr_sign_key_id(k->public, b), 0);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), FR_SIGN_KEY_ID_LEN);
    /* the private key file also gives its public half */
    EVP_PKEY *p = NULL;
    assert_int_equal(fr_sign_pub_load(k->key, &p, err, sizeof err), 0);
    EVP_PKEY_free(p);
    /* no silent replacement */
    assert_int_equal(fr_sign_key_generate(k->key, k->pub, 0, err, sizeof err), FR_EEXIST);
    assert_non_null(strstr(err, k->key));
    /* a public key is not a private key; garbage names its file */
    assert_int_equal(fr_sign_key_load(k->pub, &p, err, sizeof err), FR_ECONFIG);
    assert_non_null(strstr(err, "record.pub"));
    free_keys(k);
}

static json_t *sample_record(void)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:[{s:i, s:s}], s:b}", "ecid", "0x000012345678ABCD",
                     "model", "iPhone12,1", "method", "Purge \xe2\x80\x94 cryptographic erase",
                     "duration_s", 312, "attempts", "n", 1, "outcome", "success", "verified", 1);
}

static void signed_record_round_trip(void **state)
{
    struct keys *k = make_keys();
    json_t *rec = sample_record(), *back = NULL;
    char *line = NULL, err[512] = "";
    assert_int_equal(fr_sign_record(k->priv, rec, &line, err, sizeof err), 0);
    assert_null(strchr(line, '\n'));
    assert_non_null(strstr(line, "\"alg\":\"Ed25519\""));
    assert_int_equal(fr_verify_record(k->public, line, strlen(line), &back, err, sizeof err), 0);
    assert_true(json_equal(rec, back));
    /* as a file line, with its newline */
    char *nl = malloc(strlen(line) + 2);
    sprintf(nl, "%s\n", line);
    assert_int_equal(fr_verify_record(k->public, nl, strlen(nl), NULL, err, sizeof err), 0);
    free(nl);
    json_decref(back);
    json_decref(rec);
    free(line);
    free_keys(k);
}

static void every_changed_byte_fails(void **state)
{
    struct keys *k = make_keys();
    json_t *rec = sample_record();
    char *line = NULL, err[512] = "";
    assert_int_equal(fr_sign_record(k->priv, rec, &line, err, sizeof err), 0);
    size_t n = strlen(line);
    for (size_t i = 0; i < n; i++) {
        char saved = line[i];
        line[i] = saved == 'A' ? 'B' : saved == ' ' ? '_' : saved == '1' ? '2' : (saved == '"' ? '\'' : 'A');
        int rc = fr_verify_record(k->public, line, n, NULL, err, sizeof err);
        if (rc == 0)
            fail_msg("byte %zu ('%c' -> '%c') changed and the record still verified", i, saved, line[i]);
        assert_true(rc == FR_EPERM || rc == FR_EPROTO);
        assert_true(strlen(err) > 0);
        line[i] = saved;
    }
    /* the last base64 character before "==" holds 4 bits decoding ignores: every other
     * spelling of it is refused too, not only the one the loop above tried */
    char *last = strstr(line, "==\"}") - 1, orig = *last;
    for (const char *c = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"; *c; c++) {
        *last = *c;
        if (*c != orig)
            assert_int_not_equal(fr_verify_record(k->public, line, n, NULL, err, sizeof err), 0);
    }
    *last = orig;
    /* a value changed but the line kept canonical: the signature says so */
    char *p = strstr(line, "312");
    p[2] = '3';
    assert_int_equal(fr_verify_record(k->public, line, n, NULL, err, sizeof err), FR_EPERM);
    assert_non_null(strstr(err, "altered after it was signed"));
    p[2] = '2';
    /* whitespace added: not canonical any more */
    char *spaced = malloc(n + 2);
    memcpy(spaced, line, 1);
    spaced[1] = ' ';
    memcpy(spaced + 2, line + 1, n - 1);
    assert_int_equal(fr_verify_record(k->public, spaced, n + 1, NULL, err, sizeof err), FR_EPERM);
    assert_non_null(strstr(err, "byte 2"));
    free(spaced);
    assert_int_equal(fr_verify_record(k->public, line, n, NULL, err, sizeof err), 0);
    json_decref(rec);
    free(line);
    free_keys(k);
}

static void another_key_fails(void **state)
{
    struct keys *a = make_keys(), *b = make_keys();
    json_t *rec = sample_record();
    char *line = NULL, err[512] = "", id[FR_SIGN_KEY_ID_LEN + 1];
    assert_int_equal(fr_sign_record(a->priv, rec, &line, err, sizeof err), 0);
    assert_int_equal(fr_verify_record(b->public, line, strlen(line), NULL, err, sizeof err), FR_EPERM);
    fr_sign_key_id(a->public, id);
    assert_non_null(strstr(err, "signed by key"));
    assert_non_null(strstr(err, id));
    json_decref(rec);
    free(line);
    free_keys(a);
    free_keys(b);
}

static char *fixture_path(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/records/%s", getenv("FR_FIXTURES"), name);
    return path;
}

static char *read_line(const char *name)
{
    FILE *fp = fopen(fixture_path(name), "r");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, fp);
    fclose(fp);
    assert_true(n > 1 && line[n - 1] == '\n');
    line[n - 1] = '\0';
    return line;
}

static void a_recorded_line_comes_out_byte_for_byte(void **state)
{
    EVP_PKEY *k = NULL, *pub = NULL;
    char err[512] = "", *want = read_line("signed.line"), *line = NULL;
    assert_int_equal(fr_sign_key_load(fixture_path("record.key"), &k, err, sizeof err), 0);
    assert_int_equal(fr_sign_pub_load(fixture_path("record.key.pub"), &pub, err, sizeof err), 0);
    json_error_t je;
    json_t *rec = json_load_file(fixture_path("record.json"), JSON_REJECT_DUPLICATES, &je);
    assert_non_null(rec);
    assert_int_equal(fr_sign_record(k, rec, &line, err, sizeof err), 0);
    assert_string_equal(line, want);
    free(line);
    struct fr_signer *sg = NULL;
    assert_int_equal(fr_signer_new(k, &sg, err, sizeof err), 0);
    json_t *other = sample_record();
    for (int i = 0; i < 3; i++) { /* the context set up once serves every record after */
        assert_int_equal(fr_signer_sign(sg, rec, &line, err, sizeof err), 0);
        assert_string_equal(line, want);
        free(line);
        assert_int_equal(fr_signer_sign(sg, other, &line, err, sizeof err), 0);
        assert_int_equal(fr_verify_record(pub, line, strlen(line), NULL, err, sizeof err), 0);
        free(line);
    }
    assert_int_equal(fr_verify_record(pub, want, strlen(want), NULL, err, sizeof err), 0);
    /* a real number is still refused, by its path, and the signer still signs after it */
    json_t *bad = json_pack("{s:f}", "t", 1.5);
    assert_int_equal(fr_signer_sign(sg, bad, &line, err, sizeof err), FR_EINVAL);
    assert_null(line);
    assert_non_null(strstr(err, "$.t"));
    assert_int_equal(fr_signer_sign(sg, rec, &line, err, sizeof err), 0);
    assert_string_equal(line, want);
    free(line);
    json_decref(bad);
    json_decref(other);
    fr_signer_free(sg);
    json_decref(rec);
    EVP_PKEY_free(k);
    EVP_PKEY_free(pub);
    free(want);
}

static void malformed_lines_say_what(void **state)
{
    struct keys *k = make_keys();
    char err[512] = "";
    const char *notjson = "{\"record\":";
    assert_int_equal(fr_verify_record(k->public, notjson, strlen(notjson), NULL, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "not JSON"));
    const char *nosig = "{\"record\":{}}";
    assert_int_equal(fr_verify_record(k->public, nosig, strlen(nosig), NULL, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "not a signed record"));
    const char *rsa = "{\"record\":{},\"signature\":{\"alg\":\"RS256\",\"key_id\":\"x\",\"value\":\"y\"}}";
    assert_int_equal(fr_verify_record(k->public, rsa, strlen(rsa), NULL, err, sizeof err), FR_EPROTO);
    assert_non_null(strstr(err, "Ed25519"));
    free_keys(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical_form_is_exact),
        cmocka_unit_test(real_numbers_are_refused_by_path),
        cmocka_unit_test(key_files_are_private_and_not_overwritten),
        cmocka_unit_test(signed_record_round_trip),
        cmocka_unit_test(every_changed_byte_fails),
        cmocka_unit_test(another_key_fails),
        cmocka_unit_test(malformed_lines_say_what),
        cmocka_unit_test(a_recorded_line_comes_out_byte_for_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
