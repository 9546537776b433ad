/**
 * Re-opening a listener on the port it just left: how a TLS server whose
 * runtime cannot swap certificates in place takes a new one.
 *
 * @module
 */

/**
 * Runs `open` until it stops failing with EADDRINUSE (the operating system
 * may report the port in use for a moment after the old listener closed),
 * for at most about a second.
 */
export async function relisten<T>(open: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open();
    } catch (err) {
      if ((err as { code?: string }).code !== "EADDRINUSE" || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
