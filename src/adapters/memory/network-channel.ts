import { DrError } from '../../kernel/errors.js'
import type { Channel } from '../../ports/network.js'
import { FramePipe, type PipeOptions } from './network-pipe.js'

function unavailable(id: string, why: string): DrError {
  return new DrError('E_UNAVAILABLE', `memory channel ${id} ${why}`, { adapter: 'memory', channel: id })
}

/**
 * One end of a memory channel: sends into the pipe towards the peer and reads from the pipe coming back.
 */
export class MemoryChannel implements Channel {
  readonly id: string
  readonly localSite: string
  readonly remoteSite: string
  readonly #outbound: FramePipe
  readonly #inbound: FramePipe
  readonly #onClose: () => void
  #closed = false

  constructor(id: string, localSite: string, remoteSite: string, outbound: FramePipe, inbound: FramePipe, onClose: () => void) {
    this.id = id
    this.localSite = localSite
    this.remoteSite = remoteSite
    this.#outbound = outbound
    this.#inbound = inbound
    this.#onClose = onClose
  }

  send(frame: Uint8Array): Promise<void> {
    return this.#outbound.send(frame)
  }

  frames(): AsyncIterable<Uint8Array> {
    const inbound = this.#inbound
    return { [Symbol.asyncIterator]: () => ({ next: () => inbound.next() }) }
  }

  setBandwidthLimit(bytesPerSecond: number | undefined): void {
    this.#outbound.setLimit(bytesPerSecond)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#outbound.end(unavailable(this.id, 'is closed'))
    this.#inbound.discard(unavailable(this.id, 'was closed by the peer'))
    this.#onClose()
  }
}

/**
 * Both ends of one memory channel between a client site and a server site, so the fabric can break the
 * channel as a whole when a partition cuts the two sites apart.
 */
export class ChannelPair {
  readonly clientSite: string
  readonly serverSite: string
  readonly client: MemoryChannel
  readonly server: MemoryChannel
  readonly #pipes: readonly FramePipe[]

  /** @param onClose - called with the end that closed, each time one of the two ends closes */
  constructor(id: string, clientSite: string, serverSite: string, options: PipeOptions, onClose: (end: MemoryChannel) => void) {
    this.clientSite = clientSite
    this.serverSite = serverSite
    const up = new FramePipe(options)
    const down = new FramePipe(options)
    this.#pipes = [up, down]
    this.client = new MemoryChannel(id, clientSite, serverSite, up, down, () => onClose(this.client))
    this.server = new MemoryChannel(id, serverSite, clientSite, down, up, () => onClose(this.server))
  }

  /** True when the channel runs between sites `a` and `b` (in either direction). */
  joins(a: string, b: string): boolean {
    return (this.clientSite === a && this.serverSite === b) || (this.clientSite === b && this.serverSite === a)
  }

  /** Breaks both directions: waiting and later sends reject and readers throw `E_UNAVAILABLE`. */
  break(why: string): void {
    for (const pipe of this.#pipes) pipe.break(unavailable(this.client.id, why))
  }
}
