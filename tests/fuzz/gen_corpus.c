/* gen_corpus — writes a seed corpus of valid envelopes, one per body kind. */
#include <stdio.h>
#include <stdlib.h>

#include "fr_wire.h"

static void write_env(const char *dir, const char *name, Fr__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fr_wire_pack(env, &buf, &len) < 0)
        exit(1);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(buf, 1, len, fp) != len)
        exit(1);
    fclose(fp);
    free(buf);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    Fr__AttemptRef ref = FR__ATTEMPT_REF__INIT;
    ref.job_id = 3, ref.attempt_id = 9, ref.epoch = 44, ref.ecid = 0x1A2B3C4D5E6F70ull;
    Fr__PortInfo port = FR__PORT_INFO__INIT;
    port.path = "1-1.2", port.label = "A-02", port.hub = "A.1", port.bus = 1, port.depth = 2;
    Fr__PortInfo *ports[] = { &port };
    Fr__UnitInfo unit = FR__UNIT_INFO__INIT;
    unit.ecid = 0x1A2B3C4D5E6F70ull, unit.product_type = "iPhone12,1", unit.mode = 2;
    unit.port_path = "1-1.2";
    Fr__UnitInfo *units[] = { &unit };
    Fr__AttemptRef *refs[] = { &ref };

    Fr__Envelope env = FR__ENVELOPE__INIT;
    env.agent_id = "A", env.session = 77, env.seq = 1, env.ack = 1;

    Fr__Hello hello = FR__HELLO__INIT;
    hello.agent_version = "0.1.0", hello.hostname = "rack-a", hello.slots = 24;
    hello.ports = ports, hello.n_ports = 1, hello.units = units, hello.n_units = 1;
    hello.attempts = refs, hello.n_attempts = 1;
    env.body_case = FR__ENVELOPE__BODY_HELLO, env.hello = &hello;
    write_env(dir, "hello", &env);

    Fr__JobAssign assign = FR__JOB_ASSIGN__INIT;
    assign.ref = &ref, assign.port_path = "1-1.2", assign.firmware = "/x.ipsw", assign.erase = 1;
    env.body_case = FR__ENVELOPE__BODY_JOB_ASSIGN, env.job_assign = &assign;
    write_env(dir, "assign", &env);

    Fr__JobResult result = FR__JOB_RESULT__INIT;
    result.ref = &ref, result.outcome = FR__OUTCOME__OUTCOME_FAILED, result.error_class = "link_lost";
    result.error_text = "ERROR: Unable to send filesystem payload chunk";
    env.body_case = FR__ENVELOPE__BODY_JOB_RESULT, env.job_result = &result;
    write_env(dir, "result", &env);

    Fr__PortEvent pe = FR__PORT_EVENT__INIT;
    pe.unit = &unit;
    env.body_case = FR__ENVELOPE__BODY_PORT_EVENT, env.port_event = &pe;
    write_env(dir, "port_event", &env);

    uint64_t ecids[] = { 0x1A2B3C4D5E6F70ull };
    Fr__SubmitRequest sub = FR__SUBMIT_REQUEST__INIT;
    sub.idempotency_key = "k1", sub.firmware = "/x.ipsw", sub.ecids = ecids, sub.n_ecids = 1;
    env.body_case = FR__ENVELOPE__BODY_SUBMIT, env.submit = &sub;
    write_env(dir, "submit", &env);
    return 0;
}
