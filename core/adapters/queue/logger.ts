/** The slice of a pino logger the queue adapters use, so they work with pino or the console. */
export interface QueueLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Used when no logger is given: queue trouble must never be silent. */
export const consoleQueueLogger: QueueLogger = {
  warn: (obj, msg) => console.warn(msg ?? '', obj),
  error: (obj, msg) => console.error(msg ?? '', obj),
};
