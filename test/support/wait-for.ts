/**
 * Polls `pred` every 10 ms until it holds, or rejects naming `what` after `ms`. For state that
 * has no event of its own to await (e.g. a table size after the kernel delivered a FIN).
 */
export async function waitFor(pred: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
