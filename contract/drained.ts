import type { EventEmitter } from 'node:events';

/**
 * Resolves once a writable that refused more (`write()` returned false) can take more
 * (`drain`), or once it closed (the caller then sees it destroyed and stops). Shared by
 * the tus client's request body and the server's streamed answers.
 */
export function drained(stream: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
