/**
 * A tiny typed event emitter. Core modules emit; logging, metrics and the control API
 * subscribe. A throwing listener is isolated and reported, never breaks the emitter.
 */
export type Listener<T> = (event: T) => void;

export class TypedEvents<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  constructor(private readonly onListenerError?: (err: unknown, name: keyof Events) => void) {}

  on<K extends keyof Events>(name: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(fn);
    return () => set.delete(fn);
  }

  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<Events[K]>)(event);
      } catch (err) {
        if (this.onListenerError) this.onListenerError(err, name);
        else throw err;
      }
    }
  }
}
