/** Slots of the counters the sender thread shares with the server's thread (an Int32Array). */
export const SENT = 0;
export const FAILED = 1;
/** Batches the thread has sent out (the server compares it with the batches it posted). */
export const BATCHES_DONE = 2;
export const COUNTER_SLOTS = 3;

/** To the thread: a batch of HEP packets back to back (transferred), or the order to stop. */
export type ToThread = ArrayBuffer | { t: 'stop' };

/** From the thread. */
export type ThreadMessage = { t: 'ready' } | { t: 'failed'; message: string; count: number; total: number };
