"""A hand-written encoder for the few flashrack messages a hostile peer in the tests
sends (proto/flashrack.proto field numbers), so those tests use no flashrack code and
need no generated classes: what an outsider with the .proto file could write."""
import struct


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value) if value else b""


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((num << 3) | 2) + varint(len(data)) + data


def field_fixed64(num, value):
    return varint((num << 3) | 1) + struct.pack("<Q", value) if value else b""


def attempt_ref(job, attempt, epoch, ecid, token_hi=0, token_lo=0):
    return (field_varint(1, job) + field_varint(2, attempt) + field_varint(3, epoch) +
            field_varint(4, ecid) + field_fixed64(5, token_hi) + field_fixed64(6, token_lo))


def envelope(agent_id, session, seq, body_num, body, ack=0):
    return (field_varint(1, 1) + field_bytes(2, agent_id) + field_varint(3, session) +
            field_varint(4, seq) + field_varint(5, ack) + field_bytes(body_num, body))


HELLO, JOB_ACCEPT, JOB_RESULT = 10, 15, 17
OUTCOME_SUCCESS = 1


def hello(agent_id, session, slots=1):
    body = field_bytes(1, "0.0") + field_bytes(2, agent_id) + field_varint(3, slots)
    return envelope(agent_id, session, 0, HELLO, body)


def job_result(agent_id, session, seq, ref, outcome=OUTCOME_SUCCESS):
    return envelope(agent_id, session, seq, JOB_RESULT, field_bytes(1, ref) + field_varint(2, outcome))


def job_refusal(agent_id, session, seq, ref, reason="no"):
    return envelope(agent_id, session, seq, JOB_ACCEPT, field_bytes(1, ref) + field_bytes(3, reason))


def field_float(num, value):
    return varint((num << 3) | 5) + struct.pack("<f", value)


JOB_PROGRESS, PROGRESS_BATCH = 16, 21


def job_progress(ref, state="restoring", step=2, fraction=0.5, status=""):
    """One JobProgress (a ProgressBatch item); ref None leaves the reference out."""
    return ((field_bytes(1, ref) if ref is not None else b"") + field_bytes(2, state) +
            field_varint(3, step) + field_float(4, fraction) + field_bytes(5, status))


def job_progress_alone(agent_id, session, item):
    """A single JobProgress, as agents before batches send it."""
    return envelope(agent_id, session, 0, JOB_PROGRESS, item)


def progress_batch(agent_id, session, items):
    return envelope(agent_id, session, 0, PROGRESS_BATCH, b"".join(field_bytes(1, i) for i in items))


def fields(buf):
    """{field number: [values]} of one encoded message: varints as ints, length-delimited
    fields as bytes, fixed64 as ints (what a test needs to read a Hello)."""
    def read_varint(i):
        v, shift = 0, 0
        while True:
            b = buf[i]
            v |= (b & 0x7F) << shift
            shift += 7
            i += 1
            if not b & 0x80:
                return v, i
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = read_varint(i)
        elif wire == 2:
            n, i = read_varint(i)
            v, i = bytes(buf[i:i + n]), i + n
        elif wire == 1:
            v, i = struct.unpack_from("<Q", buf, i)[0], i + 8
        else:
            raise ValueError("wire type %d at byte %d" % (wire, i))
        out.setdefault(num, []).append(v)
    return out


SUBMIT, REPLY = 30, 33


def submit(client_id, seq, key, firmware, ecid):
    """A SubmitRequest as any client could send it (no CLI checks in front)."""
    body = field_bytes(1, key) + field_varint(3, ecid) + field_bytes(7, firmware)
    return envelope(client_id, 0, seq, SUBMIT, body)


PORT_EVENT, ATTACH = 13, 0


def port_attach(agent_id, session, seq, ecid, port_path):
    unit = field_varint(1, ecid) + field_bytes(2, "iPhone12,1") + field_varint(6, 1) + \
        field_bytes(7, port_path)
    return envelope(agent_id, session, seq, PORT_EVENT, field_varint(1, ATTACH) + field_bytes(2, unit))
