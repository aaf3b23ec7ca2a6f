/**
 * A promise bounded in time, so a test fails with a name instead of hanging.
 *
 * @module
 */

/**
 * `p`, or a rejection naming `what` once `ms` passed.
 *
 * @param p What to wait for.
 * @param ms How long at most.
 * @param what What is awaited, for the error.
 * @returns `p`'s value.
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what}: nothing after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
