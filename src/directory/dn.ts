import type { DnOptions } from '../config/schema.js';

/** A DN's service state (SPEC §4). */
export type DnState = 'in-service' | 'out-of-service';

/** One DN of the directory as plain data: its configured options plus its live state. */
export interface Dn {
  /** The number or name it is configured under, e.g. "1001" or "gw1". */
  number: string;
  options: DnOptions;
  state: DnState;
  /** Why it has its current state, e.g. "registered", "no registration", "OPTIONS timeout". */
  reason: string;
  /** When the state last changed (Clock ms). */
  since: number;
}
