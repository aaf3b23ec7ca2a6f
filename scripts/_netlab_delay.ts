/**
 * The delaying program of the network lab (`scripts/netlab.ts`), in Python 3
 * with its standard library only, because this kernel has no netem: the
 * router's firewall queues each path's packets to it (iptables `NFQUEUE`,
 * one queue per path and direction), it holds each packet for the path's
 * one-way delay and then lets it go on (verdict `ACCEPT`), speaking
 * nfnetlink_queue over a raw `AF_NETLINK` socket.
 *
 * - Only packet metadata is copied to userspace (`NFQNL_COPY_META`), and the
 *   packets of one queue leave in arrival order with one batch verdict per
 *   queue and tick (`NFQNL_MSG_VERDICT_BATCH`), so it costs a few syscalls per
 *   packet and never reorders; a lowered delay does not let a packet overtake.
 * - `DIR/delays` holds one line per queue, `<queue> <delay in ms>`; `SIGHUP`
 *   re-reads it and `DIR/ready` then holds how many times it was read (the lab
 *   waits for that count).
 * - It ends on `SIGTERM`, or by itself within a second once the router's
 *   namespace (the path in `DIR/netns`) is gone.
 * - A queue holds at most `MAXLEN` packets; beyond that the kernel drops, as a
 *   full router queue would.
 * - It runs at real-time priority (`SCHED_FIFO` 10) when allowed, so a busy
 *   machine delays its releases less: on our shared 2-core machine under load
 *   this took the p99 of a 20 ms path's ping from 25 ms to 21-23 ms. It sleeps
 *   between packets and costs about a fifth of a core at 40 Mbit/s.
 *
 * @module
 */

/** The program's source, written into the lab's directory by `up()`. */
export const DELAY_PY: string = String.raw`
import collections
import os
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
SUBSYS_QUEUE = 3
MSG_PACKET = SUBSYS_QUEUE << 8 | 0
MSG_CONFIG = SUBSYS_QUEUE << 8 | 2
MSG_VERDICT_BATCH = SUBSYS_QUEUE << 8 | 3
NLMSG_ERROR = 2
F_REQUEST = 1
F_ACK = 4
CFG_CMD = 1
CFG_PARAMS = 2
CFG_QUEUE_MAXLEN = 3
CMD_BIND = 1
COPY_META = 1
PACKET_HDR = 1
VERDICT_HDR = 2
ACCEPT = 1
MAXLEN = 8192

directory = sys.argv[1]
try:  # like a qdisc, release on time even when the machine is busy
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
except (AttributeError, OSError):
    pass
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
sock.bind((0, 0))
seq = 0


def attr(kind, payload):
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def message(kind, flags, queue, body):
    global seq
    seq += 1
    head = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue))
    return struct.pack("=IHHII", 16 + 4 + len(body), kind, flags, seq, 0) + head + body


def configure(queue, body):
    sock.send(message(MSG_CONFIG, F_REQUEST | F_ACK, queue, body))
    while True:
        data = sock.recv(65536)
        kind = struct.unpack_from("=H", data, 4)[0]
        if kind == NLMSG_ERROR:
            error = struct.unpack_from("=i", data, 16)[0]
            if error != 0:
                raise OSError(-error, "Cannot configure queue %d: %s" % (queue, os.strerror(-error)))
            return


def read_delays():
    delays = {}
    with open(os.path.join(directory, "delays")) as f:
        for line in f:
            if line.strip():
                queue, ms = line.split()
                delays[int(queue)] = float(ms) / 1000
    return delays


delays = read_delays()
held = {}
last = {}
for queue in delays:
    configure(queue, attr(CFG_CMD, struct.pack("=BBH", CMD_BIND, 0, socket.htons(socket.AF_INET))))
    configure(queue, attr(CFG_PARAMS, struct.pack(">IB", 0, COPY_META)))
    configure(queue, attr(CFG_QUEUE_MAXLEN, struct.pack(">I", MAXLEN)))
    held[queue] = collections.deque()
    last[queue] = 0.0

loads = 0
flags = {"hup": True, "stop": False}
signal.signal(signal.SIGHUP, lambda *_: flags.__setitem__("hup", True))
signal.signal(signal.SIGTERM, lambda *_: flags.__setitem__("stop", True))
signal.signal(signal.SIGINT, lambda *_: flags.__setitem__("stop", True))
with open(os.path.join(directory, "netns")) as f:
    netns = f.read().strip()
sock.setblocking(False)
buf = bytearray(65536)
watched = time.monotonic()

while not flags["stop"]:
    if flags["hup"]:
        flags["hup"] = False
        delays.update(read_delays())
        loads += 1
        with open(os.path.join(directory, "ready.tmp"), "w") as f:
            f.write("%d\n" % loads)
        os.replace(os.path.join(directory, "ready.tmp"), os.path.join(directory, "ready"))
    now = time.monotonic()
    wake = now + 0.5
    for queue, packets in held.items():
        top = -1
        while packets and packets[0][0] <= now:
            top = packets.popleft()[1]
        if top >= 0:
            verdict = attr(VERDICT_HDR, struct.pack(">II", ACCEPT, top))
            sock.send(message(MSG_VERDICT_BATCH, F_REQUEST, queue, verdict))
        if packets:
            wake = min(wake, packets[0][0])
    if now - watched > 1:
        watched = now
        if not os.path.exists(netns):
            break
    try:
        ready, _, _ = select.select([sock], [], [], max(0, wake - time.monotonic()))
    except InterruptedError:
        continue
    if not ready:
        continue
    while True:
        try:
            size = sock.recv_into(buf)
        except BlockingIOError:
            break
        except OSError as e:  # ENOBUFS: a lost message's packet leaves with a later batch
            print("delay.py: %s" % e, file=sys.stderr, flush=True)
            continue
        arrived = time.monotonic()
        at = 0
        while at + 20 <= size:
            length, kind = struct.unpack_from("=IH", buf, at)
            if length < 16:
                break
            if kind == MSG_PACKET:
                queue = socket.ntohs(struct.unpack_from("=H", buf, at + 18)[0])
                pos = at + 20
                while pos + 4 <= at + length:
                    alen, atype = struct.unpack_from("=HH", buf, pos)
                    if alen < 4:
                        break
                    if atype & 0x3FFF == PACKET_HDR:
                        packet = struct.unpack_from(">I", buf, pos + 4)[0]
                        if queue in held:
                            due = max(arrived + delays.get(queue, 0), last[queue])
                            last[queue] = due
                            held[queue].append((due, packet))
                        break
                    pos += (alen + 3) & ~3
            at += (length + 3) & ~3
`;
