/**
 * A TCP relay on loopback that counts the payload bytes it forwards in both directions, run in its own process
 * (bench/mirror.ts starts it with `fork`), so that counting the mirror's bytes on the wire takes no time from the
 * process being measured — as rsync's daemon, which counts its own bytes, runs in its own process too.
 *
 * Arguments: the host and port to relay to. Messages: the relay sends `{ kind: 'listening', port }` once it
 * accepts connections; to `{ kind: 'count' }` it answers `{ kind: 'count', bytes }`. It exits when its parent
 * disconnects.
 */
import * as net from 'node:net'

const [host = '127.0.0.1', portText = ''] = process.argv.slice(2)
const target = { host, port: Number(portText) }
let bytes = 0

const server = net.createServer((client) => {
  const upstream = net.connect(target.port, target.host)
  for (const [from, to] of [
    [client, upstream],
    [upstream, client],
  ] as const) {
    // Like the endpoints (the tcp adapter disables Nagle), so the relay adds a hop but no coalescing delay.
    from.setNoDelay(true)
    from.on('data', (data: Buffer) => (bytes += data.length))
    from.on('error', () => to.destroy())
    from.pipe(to)
  }
})

server.listen(0, '127.0.0.1', () => {
  process.send?.({ kind: 'listening', port: (server.address() as net.AddressInfo).port })
})
process.on('message', (message: { readonly kind?: unknown }) => {
  if (message.kind === 'count') process.send?.({ kind: 'count', bytes })
})
process.on('disconnect', () => process.exit(0))
