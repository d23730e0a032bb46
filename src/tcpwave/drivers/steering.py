"""The queue a multi-queue TUN device hands each packet to, chosen by port: an eBPF program.

Linux runs a TUN device's steering program (TUNSETSTEERINGEBPF) on every packet it transmits to the
device and puts the packet on queue `return value % number of queues`, the value cut to 16 bits
first (tun.c: `u16 ret`). Ours returns, for a TCP packet (IPv4, not a later fragment; IPv6 with TCP
right after the fixed header), the destination port's place in the ephemeral range (port - 49152:
tcpwave's own) when it lies there, and otherwise the source port (the peer's) mixed,
(port * 0x9E3779B1 mod 2^32) >> 17: under 2^15 both, so that with lanes (below) twice the value plus
one still fits in 16 bits. An ICMP or ICMPv6 error goes by the segment of ours it quotes (its source
port is ours), so that a "packet too big" reaches the connection's worker. Anything else (UDP, IPv6
extension headers) goes to queue 0. So:

- a connection a worker opened comes back to that worker: it chose its local port p with
  (p - 49152) % N == its index (`stack.port_owner`);
- a connection to a listener stays on queue (mixed client's port) % N: whoever gets the SYN owns
  the flow.

With lanes (a device whose queues come in pairs: queue 2i for worker i's traffic, 2i + 1 its lane
for new connections), the program returns twice the rule's value, plus one for a packet of a new
flow: a segment that opens a connection (SYN without ACK), and the next FIRST_PACKETS packets from
the same source address and port, counted in an LRU map (BPF_MAP_TYPE_LRU_HASH) the program holds.
Modulo 2N queues that is worker (value mod N)'s traffic queue or its lane, whatever N is (the value
stays under 2^16, as the kernel keeps it), so a device made once with lanes serves any number of
workers. A reader that hands on its lane before its traffic queue sees a new client's packets at
once, however full the traffic queue's ring is (a full ring drops what arrives, a new client's with
the rest), and a SYN flood fills the lanes, not the rings of the connections already open. A flow
moves from lane to traffic once, so a reader that reads a traffic batch, then the lane, and hands
the lane's packets on first keeps each flow's packets in the order they came.

The program is a few instructions of raw bytecode (legacy LD_ABS/LD_IND packet loads, which see the
packet from its IP header on a TUN device without packet information), loaded with bpf(2) through
ctypes. Loading needs CAP_BPF or CAP_SYS_ADMIN (unless the kernel allows unprivileged BPF); where
it fails the caller falls back to the workers' hand-over. `queue_for` is the same rule in Python:
the tests run the program on packets (BPF_PROG_TEST_RUN) and compare.
"""

import ctypes
import os
import platform
import struct

BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 5, 10
BPF_PROG_TYPE_SOCKET_FILTER = 1
NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
LOG_SIZE = 16384  # the verifier's log, when it refuses the program
ETH_HEADER = bytes(12) + b"\x08\x00"  # BPF_PROG_TEST_RUN takes an Ethernet frame (the type is rewritten below)

# Instruction classes, sizes, modes and operations (linux/bpf.h, linux/bpf_common.h)
LD, ALU, ALU64, JMP = 0x00, 0x04, 0x07, 0x05
W, H, B = 0x00, 0x08, 0x10
ABS, IND = 0x20, 0x40
K, X = 0x00, 0x08
ADD, SUB, MUL, OR, AND, LSH, RSH, MOV = 0x00, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0xB0
LDX, ST, STX, MEM, IMM, DW, CALL = 0x01, 0x02, 0x03, 0x60, 0x00, 0x18, 0x80
PSEUDO_MAP_FD, MAP_LOOKUP, MAP_UPDATE = 1, 1, 2  # (bpf_map_lookup_elem, bpf_map_update_elem)
BPF_MAP_CREATE, BPF_MAP_TYPE_LRU_HASH = 0, 9
# With lanes, this many packets of a flow after its SYN come by the lane too (the handshake's ACK and
# the first data: a new client's request), counted per flow in an LRU map of FLOWS entries (a SYN
# flood's spoofed sources push out the oldest; a real client's next packets come within a round trip)
FIRST_PACKETS, FLOWS = 2, 16384
TCP_SYN, TCP_ACK = 0x02, 0x10
# Linux picks even source ports for connect() first (since 4.6; 40 of 40 here were even): a peer's
# port modulo 2 would put every connection from a Linux client on queue 0. Multiplying by 2^32/phi
# and keeping bits 16-31 (Fibonacci hashing) spreads consecutive and even ports alike.
MIX = 0x9E3779B1
JA, JEQ, JGT, JGE, JNE, EXIT = 0x00, 0x10, 0x20, 0x30, 0x50, 0x90
INSN = struct.Struct("<BBhi")  # opcode, dst_reg | src_reg << 4, offset, immediate


def program(ephemeral: range, lanes: bool = False, flows: int = -1) -> bytes:
    """The steering program's bytecode: `queue_for`'s rule, for the given ephemeral port range (and
    with `lanes`, the pairs of a device with lanes for new connections, counting each new flow's
    first packets in the map of descriptor `flows`)."""
    code: list[tuple] = []  # (opcode, dst, src, offset or label, immediate)

    def op(opcode, dst=0, src=0, off: int | str = 0, imm=0):
        code.append((opcode, dst, src, off, imm))

    labels: dict[str, int] = {}

    def lane(reg: int) -> None:
        """r<reg> = 1 for a SYN without ACK (flags in r0), else 0."""
        op(ALU64 | AND | K, 0, imm=TCP_SYN | TCP_ACK)
        op(ALU64 | MOV | K, reg, imm=0)
        op(JMP | JNE | K, 0, off=1, imm=TCP_SYN)
        op(ALU64 | MOV | K, reg, imm=1)

    def label(name: str) -> None:
        labels[name] = len(code)

    def map_fd(reg: int) -> None:
        """r<reg> = the flows map (a 64-bit load: two instruction slots)."""
        op(LD | DW | IMM, reg, PSEUDO_MAP_FD, imm=flows)
        op(0, imm=0)

    op(ALU64 | MOV | X, 6, 1)             # r6 = the packet (LD_ABS/LD_IND read through it)
    op(LD | ABS | B, imm=0)               # r0 = version and IHL
    op(ALU64 | MOV | X, 7, 0)
    op(ALU64 | RSH | K, 7, imm=4)         # r7 = IP version
    op(JMP | JEQ | K, 7, off="v4", imm=4)
    op(JMP | JEQ | K, 7, off="v6", imm=6)
    label("other")
    op(ALU64 | MOV | K, 0, imm=0)         # not TCP, or not its first bytes: queue 0
    op(JMP | EXIT)
    label("v4")
    op(ALU64 | AND | K, 0, imm=0x0F)
    op(ALU64 | LSH | K, 0, imm=2)
    op(ALU64 | MOV | X, 7, 0)             # r7 = the IPv4 header's length
    op(LD | ABS | H, imm=6)
    op(ALU64 | AND | K, 0, imm=0x1FFF)
    op(JMP | JNE | K, 0, off="other", imm=0)   # a later fragment: no ports in it
    op(LD | ABS | B, imm=9)
    op(JMP | JEQ | K, 0, off="tcp4", imm=6)
    op(JMP | JNE | K, 0, off="other", imm=1)   # neither TCP nor ICMP
    op(LD | IND | B, src=7, imm=8)        # ICMP: the packet it quotes (ours) starts 8 bytes in
    op(ALU64 | AND | K, 0, imm=0x0F)
    op(ALU64 | LSH | K, 0, imm=2)
    op(ALU64 | ADD | X, 0, 7)
    op(ALU64 | MOV | X, 9, 0)             # r9 = where its TCP header starts, less 8
    op(LD | IND | B, src=7, imm=8 + 9)
    op(JMP | JNE | K, 0, off="other", imm=6)
    op(LD | IND | H, src=9, imm=8 + 2)
    op(ALU64 | MOV | X, 8, 0)             # r8 = the peer's port (the quoted segment's destination)
    op(LD | IND | H, src=9, imm=8)        # r0 = ours (its source)
    op(ALU64 | MOV | K, 9, imm=0)         # (an error about a connection: its traffic queue)
    op(JMP | JA, off="choose")
    label("tcp4")
    if lanes:
        op(LD | IND | B, src=7, imm=13)   # the TCP flags
        lane(9)
    op(LD | IND | H, src=7, imm=0)
    op(ALU64 | MOV | X, 8, 0)             # r8 = source port
    op(LD | IND | H, src=7, imm=2)        # r0 = destination port
    if lanes:
        op(ALU64 | MOV | X, 7, 0)         # r7 = destination port (the header's length is no longer needed)
        op(LD | ABS | W, imm=12)          # r0 = the source address
        op(JMP | JA, off="flow")
    else:
        op(JMP | JA, off="choose")
    label("v6")
    op(LD | ABS | B, imm=6)
    op(JMP | JEQ | K, 0, off="tcp6", imm=6)    # next header: TCP (right after the fixed header only)
    op(JMP | JNE | K, 0, off="other", imm=58)  # or ICMPv6
    op(LD | ABS | B, imm=40 + 8 + 6)      # the quoted packet's next header
    op(JMP | JNE | K, 0, off="other", imm=6)
    op(LD | ABS | H, imm=40 + 8 + 40 + 2)
    op(ALU64 | MOV | X, 8, 0)
    op(LD | ABS | H, imm=40 + 8 + 40)
    op(ALU64 | MOV | K, 9, imm=0)
    op(JMP | JA, off="choose")
    label("tcp6")
    if lanes:
        op(LD | ABS | B, imm=40 + 13)
        lane(9)
    op(LD | ABS | H, imm=40)
    op(ALU64 | MOV | X, 8, 0)
    op(LD | ABS | H, imm=42)
    if lanes:
        op(ALU64 | MOV | X, 7, 0)
        op(LD | ABS | W, imm=20)          # r0 = the source address's last 32 bits
        label("flow")                     # the flow's key, (address << 16) | port, at fp - 8
        op(ALU64 | LSH | K, 0, imm=16)
        op(ALU64 | OR | X, 0, 8)
        op(STX | MEM | DW, 10, 0, off=-8)
        op(JMP | JNE | K, 9, off="new", imm=0)
        map_fd(1)
        op(ALU64 | MOV | X, 2, 10)
        op(ALU64 | ADD | K, 2, imm=-8)
        op(JMP | CALL, imm=MAP_LOOKUP)    # r0 = its count of packets still to come by the lane, or NULL
        op(JMP | JEQ | K, 0, off="known", imm=0)
        op(LDX | MEM | W, 1, 0)
        op(JMP | JEQ | K, 1, off="known", imm=0)
        op(ALU64 | SUB | K, 1, imm=1)
        op(STX | MEM | W, 0, 1)
        op(ALU64 | MOV | K, 9, imm=1)     # one of a new flow's first packets: by the lane
        op(JMP | JA, off="known")
        label("new")                      # a SYN: its flow's next packets come by the lane too
        op(ST | MEM | W, 10, off=-16, imm=FIRST_PACKETS)
        map_fd(1)
        op(ALU64 | MOV | X, 2, 10)
        op(ALU64 | ADD | K, 2, imm=-8)
        op(ALU64 | MOV | X, 3, 10)
        op(ALU64 | ADD | K, 3, imm=-16)
        op(ALU64 | MOV | K, 4, imm=0)
        op(JMP | CALL, imm=MAP_UPDATE)
        label("known")
        op(ALU64 | MOV | X, 0, 7)         # r0 = destination port, for the rule
    label("choose")
    op(JMP | JGT | K, 0, off="peer", imm=ephemeral.stop - 1)
    op(JMP | JGE | K, 0, off="ours", imm=ephemeral.start)  # ours, from the ephemeral range
    label("peer")
    op(ALU64 | MOV | X, 0, 8)             # otherwise the peer's port, mixed
    op(ALU | MUL | K, 0, imm=MIX - (1 << 32))  # (32-bit: the product modulo 2^32)
    op(ALU | RSH | K, 0, imm=17)
    op(JMP | JA, off="done")
    label("ours")
    op(ALU64 | SUB | K, 0, imm=ephemeral.start)  # its place in the range
    label("done")
    if lanes:
        op(ALU64 | LSH | K, 0, imm=1)     # the traffic queue of the pair; a SYN's lane is the next one
        op(ALU64 | ADD | X, 0, 9)
    op(JMP | EXIT)
    out = []
    for i, (opcode, dst, src, off, imm) in enumerate(code):
        if isinstance(off, str):
            off = labels[off] - i - 1
        out.append(INSN.pack(opcode, dst | src << 4, off, imm))
    return b"".join(out)


def queue_for(packet: bytes | memoryview, ephemeral: range, lanes: bool = False, flows: dict | None = None) -> int:
    """What the program returns for `packet` (an IP packet): the kernel takes it modulo the queues.
    With lanes, `flows` is the program's map: (source address's last 32 bits << 16 | source port) ->
    how many packets of that flow are still to come by the lane."""
    if not lanes:
        return _rule(packet, ephemeral)
    value = 2 * _rule(packet, ephemeral)
    version = packet[0] >> 4 if len(packet) else 0
    start = (packet[0] & 0x0F) * 4 if version == 4 else 40
    tcp = (version == 4 and len(packet) >= 10 and packet[9] == 6 and not int.from_bytes(packet[6:8], "big") & 0x1FFF
           or version == 6 and len(packet) >= 7 and packet[6] == 6)
    if not tcp:
        return value
    if len(packet) < max(start + 14, 16 if version == 4 else 24):
        return 0  # (the program's load of the flags, or of the source address, fails: it ends with 0)
    key = int.from_bytes(packet[12:16] if version == 4 else packet[20:24], "big") << 16
    key |= int.from_bytes(packet[start:start + 2], "big")
    flows = {} if flows is None else flows
    if packet[start + 13] & (TCP_SYN | TCP_ACK) == TCP_SYN:
        flows[key] = FIRST_PACKETS
        return value + 1
    if flows.get(key):
        flows[key] -= 1
        return value + 1
    return value


def _rule(packet: bytes | memoryview, ephemeral: range) -> int:
    if len(packet) < 1:
        return 0
    version = packet[0] >> 4
    if version == 4:
        start = (packet[0] & 0x0F) * 4
        if len(packet) < 10 or int.from_bytes(packet[6:8], "big") & 0x1FFF or packet[9] not in (1, 6):
            return 0
        if packet[9] == 1:  # ICMP: by the segment of ours it quotes, whose source port is ours
            if len(packet) < start + 18 or packet[start + 17] != 6:
                return 0
            return _choose(packet, start + 8 + (packet[start + 8] & 0x0F) * 4, True, ephemeral)
    elif version == 6:
        start = 40
        if len(packet) < 7 or packet[6] not in (6, 58):
            return 0
        if packet[6] == 58:
            if len(packet) < 55 or packet[54] != 6:
                return 0
            return _choose(packet, 88, True, ephemeral)
    else:
        return 0
    return _choose(packet, start, False, ephemeral)


def _choose(packet, at: int, quoted: bool, ephemeral: range) -> int:
    """The rule, for the TCP header at `at` (one we sent, quoted in an ICMP error, when `quoted`)."""
    if len(packet) < at + 4:
        return 0  # (the program's load fails there, and a failed load ends it with 0)
    sport, dport = struct.unpack_from("!HH", packet, at)
    ours, peer = (sport, dport) if quoted else (dport, sport)
    return ours - ephemeral.start if ours in ephemeral else (peer * MIX & 0xFFFFFFFF) >> 17


class BpfError(OSError):
    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _syscall():
    number = NR_BPF.get(platform.machine())
    if number is None:
        raise BpfError(0, f"bpf(2) is not known here on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.syscall
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
    return number, fn


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    number, fn = _syscall()
    r = fn(number, cmd, ctypes.addressof(attr), len(attr))
    if r < 0:
        err = ctypes.get_errno()
        raise BpfError(err, os.strerror(err))
    return int(r)


def load(ephemeral: range, lanes: bool = False) -> int:
    """Load the steering program (with lanes: and the map of new flows it counts in, which lives as
    long as the program); its file descriptor (the caller closes it), or BpfError saying why not."""
    if platform.machine() not in NR_BPF:
        raise BpfError(0, f"bpf(2) is not known here on {platform.machine()}")
    flows = -1
    if lanes:
        attr = ctypes.create_string_buffer(struct.pack("<IIIII", BPF_MAP_TYPE_LRU_HASH, 8, 4, FLOWS, 0), 72)
        try:
            flows = _bpf(BPF_MAP_CREATE, attr)
        except BpfError as e:
            raise BpfError(e.errno, f"the kernel refused the steering program's map: {e.strerror}") from None
    try:
        return _load(program(ephemeral, lanes, flows))
    finally:
        if flows >= 0:
            os.close(flows)


def _load(code: bytes) -> int:
    insns = ctypes.create_string_buffer(code)
    licence = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(LOG_SIZE)
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQIIQ", attr, 0, BPF_PROG_TYPE_SOCKET_FILTER, (len(insns) - 1) // INSN.size,
                     ctypes.addressof(insns), ctypes.addressof(licence), 1, LOG_SIZE, ctypes.addressof(log))
    struct.pack_into("16s", attr, 48, b"tcpwave_steer")
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except BpfError as e:
        if e.errno == 1:  # EPERM
            raise BpfError(e.errno, "loading a BPF program needs CAP_BPF or CAP_SYS_ADMIN "
                                    "(kernel.unprivileged_bpf_disabled)") from None
        verdict = log.value.decode(errors="replace").strip().splitlines()
        raise BpfError(e.errno, f"the kernel refused the steering program: {e.strerror}"
                                + (f" ({verdict[-1]})" if verdict else "")) from None


def run_on(fd: int, packet: bytes) -> int:
    """Run the loaded program on one IP packet (BPF_PROG_TEST_RUN); what it returns."""
    ethertype = b"\x86\xdd" if packet[:1] and packet[0] >> 4 == 6 else b"\x08\x00"
    data = ctypes.create_string_buffer(ETH_HEADER[:12] + ethertype + packet)
    out = ctypes.create_string_buffer(len(data) + 256)
    attr = ctypes.create_string_buffer(80)
    struct.pack_into("<IIIIQQI", attr, 0, fd, 0, len(data) - 1, len(out), ctypes.addressof(data),
                     ctypes.addressof(out), 1)
    _bpf(BPF_PROG_TEST_RUN, attr)
    return struct.unpack_from("<I", attr, 4)[0]
