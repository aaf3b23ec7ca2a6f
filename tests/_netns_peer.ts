/**
 * A peer process for `socket_netns_test.ts`, run inside a network namespace
 * with `ip netns exec`. Its job comes as JSON in `LW_PEER`; it prints one JSON
 * line with the result.
 *
 * @module
 */
import process from "node:process";
import {
  constructMulticastSocketInstance,
  constructUDPSocketInstance,
  type MulticastSocket,
  type UDPSocket,
} from "../socket.ts";

interface RecvJob {
  role: "recv";
  /** Each socket: a plain UDP bind, or a multicast group to join. */
  sockets: Array<
    { bind?: { address: string; port: number }; group?: { address: string; port: number } }
  >;
  ms: number;
}
interface SendJob {
  role: "send";
  bind: { address: string; port: number };
  broadcast?: boolean;
  multicast?: boolean;
  to: Array<{ address: string; port: number }>;
}

const job = JSON.parse(process.env.LW_PEER ?? "{}") as RecvJob | SendJob;

if (job.role === "recv") {
  const got: string[][] = job.sockets.map(() => []);
  const socks: UDPSocket[] = [];
  for (const [i, s] of job.sockets.entries()) {
    let sock: UDPSocket | MulticastSocket;
    if (s.group !== undefined) {
      const m = constructMulticastSocketInstance();
      await m.addMembership(s.group);
      sock = m;
    } else {
      sock = constructUDPSocketInstance();
      await sock.bind(s.bind!);
    }
    sock.on("message", (m) => got[i].push(new TextDecoder().decode(m.message)));
    socks.push(sock);
  }
  console.log("ready");
  await new Promise((r) => setTimeout(r, job.ms));
  for (const s of socks) await s.close();
  console.log(JSON.stringify({ got }));
} else {
  const sock = job.multicast ? constructMulticastSocketInstance() : constructUDPSocketInstance();
  await sock.bind(job.bind);
  if (job.broadcast) await sock.setExtraOptions({ broadcast: true });
  if (job.multicast) await (sock as MulticastSocket).setMulticastTTL(2);
  const codes: number[] = [];
  for (const to of job.to) {
    for (let i = 0; i < 3; i++) {
      try {
        await sock.send({ data: `to ${to.address}`, address: to });
        codes.push(0);
      } catch (e) {
        codes.push((e as { code: number }).code);
      }
      await new Promise((r) => setTimeout(r, 30));
    }
  }
  await sock.close();
  console.log(JSON.stringify({ codes }));
}
