/* lockdown — a simulated unit's lockdownd; see lockdown.h. */
#include "lockdown.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fr_models.h"
#include "fr_mux_wire.h"

/* Keys lockdownd refuses without a session (GetProhibited). */
static const char *const private_keys[] = {
    "InternationalMobileEquipmentIdentity", "PhoneNumber", "IntegratedCircuitCardIdentity",
    "DevicePublicKey", "EscrowBag",
};

static int is_private(const char *key)
{
    for (size_t i = 0; i < sizeof private_keys / sizeof private_keys[0]; i++)
        if (strcmp(key, private_keys[i]) == 0)
            return 1;
    return 0;
}

/* The HostID a paired host holds for this unit: stable per unit, UUID-shaped. */
static void host_id_of(const struct rack_unit *u, char *buf, size_t len)
{
    snprintf(buf, len, "%08X-0000-4000-8000-%012llX", u->cpid,
             (unsigned long long)(u->ecid & 0xFFFFFFFFFFFFull));
}

/* What an unpaired host may read (GetValue without a Key returns all of it); in a
 * session also the IMEI of a unit with a modem. */
static plist_t identity(const struct rack_unit *u, int session)
{
    char udid[48], hw[24];
    rack_unit_udid(u, udid, sizeof udid);
    size_t i = 0;
    for (; u->board[i] && i + 1 < sizeof hw; i++)
        hw[i] = (char)(u->board[i] >= 'a' && u->board[i] <= 'z' ? u->board[i] - 32 : u->board[i]);
    hw[i] = '\0';
    const struct fr_model *m = fr_model_find(u->product_type);
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "UniqueChipID", plist_new_uint(u->ecid));
    plist_dict_set_item(d, "UniqueDeviceID", plist_new_string(udid));
    plist_dict_set_item(d, "ProductType", plist_new_string(u->product_type));
    plist_dict_set_item(d, "ProductVersion", plist_new_string(u->ios));
    plist_dict_set_item(d, "BuildVersion", plist_new_string(rack_unit_build(u)));
    plist_dict_set_item(d, "HardwareModel", plist_new_string(hw));
    plist_dict_set_item(d, "DeviceName", plist_new_string(m ? m->name : "iPhone"));
    plist_dict_set_item(d, "DeviceClass", plist_new_string("iPhone"));
    plist_dict_set_item(d, "ProductName", plist_new_string("iPhone OS"));
    plist_dict_set_item(d, "SerialNumber", plist_new_string(u->serial));
    plist_dict_set_item(d, "ChipID", plist_new_uint(u->cpid));
    plist_dict_set_item(d, "BoardId", plist_new_uint(u->bdid));
    plist_dict_set_item(d, "ActivationState", plist_new_string("Activated"));
    char imei[16];
    if (session && rack_unit_imei(u, imei, sizeof imei) == 0)
        plist_dict_set_item(d, "InternationalMobileEquipmentIdentity", plist_new_string(imei));
    return d;
}

static plist_t reply(const char *request)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "Request", plist_new_string(request));
    return d;
}

static plist_t error_reply(const char *request, const char *error)
{
    plist_t d = reply(request);
    plist_dict_set_item(d, "Error", plist_new_string(error));
    return d;
}

static plist_t get_value(struct lockdown_session *s, const struct rack_unit *u, plist_t req)
{
    const char *domain = mux_dict_string(req, "Domain");
    const char *key = mux_dict_string(req, "Key");
    plist_t all = identity(u, s->active), d;
    if (key && is_private(key) && !s->active) {
        d = error_reply("GetValue", "GetProhibited");
    } else if (domain) {
        d = error_reply("GetValue", "MissingValue"); /* no domain is modelled */
    } else if (!key) {
        d = reply("GetValue");
        plist_dict_set_item(d, "Value", plist_copy(all));
    } else if (plist_dict_get_item(all, key)) {
        d = reply("GetValue");
        plist_dict_set_item(d, "Value", plist_copy(plist_dict_get_item(all, key)));
    } else {
        d = error_reply("GetValue", "MissingValue");
    }
    if (domain)
        plist_dict_set_item(d, "Domain", plist_new_string(domain));
    if (key)
        plist_dict_set_item(d, "Key", plist_new_string(key));
    plist_free(all);
    return d;
}

static plist_t start_session(struct lockdown_session *s, const struct rack_unit *u, plist_t req)
{
    char want[48];
    host_id_of(u, want, sizeof want);
    const char *host_id = mux_dict_string(req, "HostID");
    if (!rack_unit_trusts_host(u) || !host_id || strcmp(host_id, want) != 0)
        return error_reply("StartSession", "InvalidHostID");
    s->active = 1;
    snprintf(s->session_id, sizeof s->session_id, "%08X-5E55-4000-8000-%012llX", u->bdid,
             (unsigned long long)(u->ecid & 0xFFFFFFFFFFFFull));
    plist_t d = reply("StartSession");
    plist_dict_set_item(d, "SessionID", plist_new_string(s->session_id));
    plist_dict_set_item(d, "EnableSessionSSL", plist_new_bool(0));
    return d;
}

static plist_t enter_recovery(struct lockdown_session *s, const struct rack_unit *u,
                              enum lockdown_effect *effect)
{
    /* since iOS 14.5 a host needs a session (pairing) for this */
    if (!s->active && rack_unit_ios_at_least(u, 14, 5))
        return error_reply("EnterRecovery", "SessionInactive");
    if (s->active && !rack_unit_trusts_host(u))
        return error_reply("EnterRecovery", "InvalidHostID");
    *effect = LOCKDOWN_ENTER_RECOVERY;
    plist_t d = reply("EnterRecovery");
    plist_dict_set_item(d, "Result", plist_new_string("Success"));
    return d;
}

static plist_t success(const char *request)
{
    plist_t d = reply(request);
    plist_dict_set_item(d, "Result", plist_new_string("Success"));
    return d;
}

/* ---- restore mode: restored on the same port ---------------------------------- */

/* A value; the real restored's differs by iOS version. */
#define RESTORE_PROTOCOL_VERSION 14

/* QueryType: libimobiledevice keeps this answer and restored_get_value() reads the
 * unit's SerialNumber and HardwareModel from it. */
static plist_t restored_query_type(const struct rack_unit *u)
{
    plist_t all = identity(u, 0), d = reply("QueryType");
    plist_dict_set_item(d, "Type", plist_new_string("com.apple.mobile.restored"));
    plist_dict_set_item(d, "RestoreProtocolVersion", plist_new_uint(RESTORE_PROTOCOL_VERSION));
    plist_dict_set_item(d, "SerialNumber", plist_copy(plist_dict_get_item(all, "SerialNumber")));
    plist_dict_set_item(d, "HardwareModel", plist_copy(plist_dict_get_item(all, "HardwareModel")));
    plist_free(all);
    return d;
}

/* QueryValue {QueryKey}: the answer holds the value under the key's own name; HardwareInfo
 * is what idevicerestore reads (UniqueChipID, SupportsImage4). A key not modelled is
 * absent from the answer, which libimobiledevice reports as an error. */
static plist_t restored_query_value(const struct rack_unit *u, plist_t req)
{
    const char *key = mux_dict_string(req, "QueryKey");
    plist_t d = reply("QueryValue");
    if (key && strcmp(key, "HardwareInfo") == 0) {
        plist_t hw = plist_new_dict();
        plist_dict_set_item(hw, "UniqueChipID", plist_new_uint(u->ecid));
        plist_dict_set_item(hw, "ChipID", plist_new_uint(u->cpid));
        plist_dict_set_item(hw, "BoardID", plist_new_uint(u->bdid));
        plist_dict_set_item(hw, "ProductionMode", plist_new_bool(1));
        plist_dict_set_item(hw, "SupportsImage4", plist_new_bool(1));
        plist_dict_set_item(d, "HardwareInfo", hw);
    }
    return d;
}

static plist_t restored_answer(const struct rack_unit *u, const char *request, plist_t req,
                               enum lockdown_effect *effect)
{
    if (strcmp(request, "QueryType") == 0)
        return restored_query_type(u);
    if (strcmp(request, "QueryValue") == 0)
        return restored_query_value(u, req);
    if (strcmp(request, "Goodbye") == 0) {
        *effect = LOCKDOWN_GOODBYE;
        return success("Goodbye");
    }
    /* the restore itself (StartRestore and what follows) is not simulated */
    return error_reply(request, "UnsupportedRequest");
}

plist_t lockdown_answer(struct lockdown_session *s, const struct rack_unit *u, const char *buid,
                        plist_t req, enum lockdown_effect *effect)
{
    *effect = LOCKDOWN_STAY;
    const char *request = mux_dict_string(req, "Request");
    if (!request)
        return error_reply("", "MissingRequest");
    if (u->mode == 3) /* restore mode: restored answers on lockdownd's port */
        return restored_answer(u, request, req, effect);
    if (strcmp(request, "QueryType") == 0) {
        plist_t d = reply("QueryType");
        plist_dict_set_item(d, "Type", plist_new_string("com.apple.mobile.lockdown"));
        return d;
    }
    if (strcmp(request, "GetValue") == 0)
        return get_value(s, u, req);
    if (strcmp(request, "StartSession") == 0)
        return start_session(s, u, req);
    if (strcmp(request, "StopSession") == 0) {
        s->active = 0;
        return success("StopSession");
    }
    if (strcmp(request, "EnterRecovery") == 0)
        return enter_recovery(s, u, effect);
    if (strcmp(request, "Goodbye") == 0) {
        *effect = LOCKDOWN_GOODBYE;
        return success("Goodbye");
    }
    if (strcmp(request, "Pair") == 0 || strcmp(request, "ValidatePair") == 0)
        /* the Trust dialog on the phone: an operator has to answer it */
        return error_reply(request, rack_unit_trusts_host(u) ? "InvalidHostID" : "PairingDialogResponsePending");
    return error_reply(request, "InvalidRequest");
}

plist_t lockdown_pair_record(const struct rack_unit *u, const char *buid)
{
    if (!u->paired)
        return NULL;
    char host_id[48];
    host_id_of(u, host_id, sizeof host_id);
    static const char cert[] = "-----BEGIN CERTIFICATE-----\nsimulated\n-----END CERTIFICATE-----\n";
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "HostID", plist_new_string(host_id));
    plist_dict_set_item(d, "SystemBUID", plist_new_string(buid));
    plist_dict_set_item(d, "DeviceCertificate", plist_new_data(cert, sizeof cert - 1));
    plist_dict_set_item(d, "HostCertificate", plist_new_data(cert, sizeof cert - 1));
    plist_dict_set_item(d, "RootCertificate", plist_new_data(cert, sizeof cert - 1));
    return d;
}
