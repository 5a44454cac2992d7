import * as net from 'node:net'
import type { TcpAddress } from '../../src/index.js'

/**
 * The WAN between two sites in the drill: a loopback TCP relay in front of a site's listener. `cut()` drops every
 * connection through it and refuses new ones (the site is gone from the network); `restore()` lets traffic through
 * again. It counts the bytes it carried, which is what "bytes on the wire" means in the report.
 */
export class WanLink {
  readonly #server: net.Server
  readonly #sockets = new Set<net.Socket>()
  #up = true
  bytes = 0

  private constructor(target: TcpAddress) {
    this.#server = net.createServer((client) => {
      if (!this.#up) {
        client.destroy()
        return
      }
      const upstream = net.connect(target.port, target.host)
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.#sockets.add(from)
        from.on('data', (chunk: Buffer) => {
          this.bytes += chunk.length
          if (!to.write(chunk)) {
            from.pause()
            to.once('drain', () => from.resume())
          }
        })
        from.on('close', () => {
          this.#sockets.delete(from)
          to.destroy()
        })
        from.on('error', () => to.destroy())
      }
    })
  }

  /** Starts a relay on a free loopback port that forwards to `target`. */
  static async open(target: TcpAddress): Promise<WanLink> {
    const link = new WanLink(target)
    await new Promise<void>((resolve) => link.#server.listen(0, '127.0.0.1', resolve))
    return link
  }

  /** Where the other site should connect to reach the target through this link. */
  address(): TcpAddress {
    const address = this.#server.address()
    if (address === null || typeof address === 'string') throw new Error('the WAN link is not listening')
    return { host: '127.0.0.1', port: address.port }
  }

  /** The site disappears from the network: every connection through the link drops, new ones are refused. */
  cut(): void {
    this.#up = false
    for (const socket of this.#sockets) socket.destroy()
  }

  /** The site is reachable again. */
  restore(): void {
    this.#up = true
  }

  /** Cuts the link and stops listening. */
  async close(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
