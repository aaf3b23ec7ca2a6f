/**
 * Which channel of a link carries what, when the link has several
 * (`docs/link-protocol.md`, "Several channels"): the channel that delivers
 * soonest takes everything, and the others take bulk data only while the
 * better ones would need longer to drain the backlog than they need to
 * deliver it (the earliest-delivery rule of ECF and BLEST, in a pull
 * model: a channel asks for a batch when its in-flight budget has room).
 *
 * A channel's **delivery estimate** for `n` bytes written now is half its
 * smallest round trip, plus what is queued ahead on its path (bytes in
 * flight beyond one round trip's worth at its delivery rate) over that rate,
 * plus `n` over that rate. Until a round that filled the path measured its
 * rate, it is assumed to carry at least its budget per round trip; before it has measured a round
 * trip, {@linkcode UNMEASURED_RTT}, and it carries no bulk data unless it is
 * the best channel (a further channel sends a PING at once to measure one).
 *
 * Modes (`LinkOptions.scheduler`):
 * - `delivery` (the default): as above.
 * - `redundant`: as above, and every new frame the best channel carries is
 *   also queued for the second best (first copy wins; the peer drops the
 *   second by its link number). Lower latency when a path stalls, half the
 *   throughput.
 * - `backup`: only the channel added first (of those up) carries data; the
 *   others stand by (keep-alive only) and take over when it is lost or
 *   suspect.
 *
 * A channel added as `backup` stands by while a channel that is not is up.
 * A `suspect` or `leaving` channel carries nothing new (`_channels.ts`).
 *
 * @module
 */
import type { LinkChannel } from "./_channels.ts";
import type { BatchPlan } from "./_outbound.ts";

/** How a link spreads frames over its channels. */
export type SchedulerMode = "delivery" | "redundant" | "backup";

/** Round trip assumed for a channel that has not measured one yet (ms). */
export const UNMEASURED_RTT = 1000;

/** One channel's turn in a link's poll: what it may carry, in the order to ask. */
export interface ChannelTurn {
  /** The channel. */
  ch: LinkChannel;
  /** What it may carry. */
  plan: BatchPlan;
  /** (`redundant`, the best channel) where copies of its new frames go. */
  copyTo: LinkChannel | undefined;
}

/**
 * When `n` bytes written to a channel now would arrive (ms from now).
 *
 * @param ch The channel.
 * @param n The bytes.
 * @returns The estimate.
 */
export function deliveryEstimate(ch: LinkChannel, n: number): number {
  const rtt = ch.minRtt ?? UNMEASURED_RTT;
  const rate = rateOf(ch);
  const queued = Math.max(0, ch.inFlight - rate * rtt);
  return rtt / 2 + (queued + n) / rate;
}

/**
 * A channel's delivery rate (bytes per ms): as measured by a round that
 * filled the path; before one did, at least its budget per round trip.
 */
function rateOf(ch: LinkChannel): number {
  if (ch.rateKnown) return ch.rate;
  return Math.max(ch.rate, ch.budget / Math.max(ch.minRtt ?? UNMEASURED_RTT, 1));
}

/**
 * The turns of a link's channels for one poll, best first.
 *
 * @param channels The channels, in the order they were added.
 * @param mode The scheduler mode.
 * @param queued Payload bytes queued in the streams (the backlog).
 * @param numbers Most new numbered frames a batch may add.
 * @returns The turns (every channel, standby ones last).
 */
export function channelTurns(
  channels: Iterable<LinkChannel>,
  mode: SchedulerMode,
  queued: number,
  numbers: number,
): ChannelTurn[] {
  const all = [...channels];
  const alive = all.filter((c) => c.leave === undefined);
  let up = alive.filter((c) => !c.suspect);
  if (up.length === 0) up = alive;
  let carriers = up.filter((c) => !c.backup);
  if (carriers.length === 0) carriers = up;
  if (mode === "backup") carriers = carriers.slice(0, 1);
  const est = new Map<LinkChannel, number>();
  for (const c of carriers) est.set(c, deliveryEstimate(c, 0));
  carriers.sort((a, b) => est.get(a)! - est.get(b)!);
  const turns: ChannelTurn[] = [];
  const best = carriers[0];
  let betterRate = 0;
  for (const [i, c] of carriers.entries()) {
    if (i === 0) {
      turns.push({
        ch: c,
        plan: { role: "best", bulk: true, numbers },
        copyTo: mode === "redundant" ? carriers[1] : undefined,
      });
    } else {
      // Bulk data goes here only when the better channels would take longer
      // to drain the backlog than this one takes to deliver a frame.
      const wait = est.get(best)! + queued / betterRate;
      // A channel that has not measured a round trip yet carries none (its
      // PING measures it first).
      const bulk = c.minRtt !== undefined &&
        wait >= deliveryEstimate(c, Math.min(queued, 16 * 1024));
      turns.push({ ch: c, plan: { role: "other", bulk, numbers }, copyTo: undefined });
    }
    betterRate += rateOf(c);
  }
  for (const c of all) {
    if (!carriers.includes(c)) {
      turns.push({ ch: c, plan: { role: "standby", bulk: false, numbers: 0 }, copyTo: undefined });
    }
  }
  return turns;
}
