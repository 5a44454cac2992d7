/** Stand-ins for the reader's own packages that the guides import (test/docs/code-blocks.test.ts). */
declare module 'my-storage-adapter' {
  /** The reader's own StoragePort implementation. */
  export function myStorage(options: { endpoint: string }): import('drkit').StoragePort
}
