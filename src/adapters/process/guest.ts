import * as t from 'io-ts'
import type { GuestCommand } from './types.js'

/**
 * A control request a {@link ProcessHost} writes to a guest's stdin, as one JSON object on one line:
 * `quiesce` asks the guest's applications to flush their writes and hold new ones until `unquiesce`.
 * `id` increases per request; the guest echoes it in its {@link GuestReply}. A guest handles requests in
 * the order they arrive, and exits when its stdin ends (the adapter is gone).
 *
 * @public
 */
export interface GuestRequest {
  readonly drkit: 'quiesce' | 'unquiesce'
  readonly id: number
}

/**
 * A guest's answer to a {@link GuestRequest}, as one JSON object on one line of its stdout (other lines are
 * ignored): `quiesced` once its writes are flushed and held (with whether that is application-consistent and
 * which writers took part), `unquiesced` once writes flow again.
 *
 * @public
 */
export type GuestReply =
  | {
      readonly drkit: 'quiesced'
      readonly id: number
      readonly applicationConsistent: boolean
      readonly writers: readonly string[]
    }
  | { readonly drkit: 'unquiesced'; readonly id: number }

/** Codec of {@link GuestReply}, for the lines a guest prints. */
export const GuestReplyCodec: t.Type<GuestReply, GuestReply, unknown> = t.union(
  [
    t.readonly(
      t.type({
        drkit: t.literal('quiesced'),
        id: t.number,
        applicationConsistent: t.boolean,
        writers: t.readonlyArray(t.string),
      }),
    ),
    t.readonly(t.type({ drkit: t.literal('unquiesced'), id: t.number })),
  ],
  'GuestReply',
)

/**
 * The built-in guest, run with `node -e`: it answers every request at once (it has no applications, so
 * nothing to flush), exits on SIGTERM and when its stdin ends.
 */
const BUILT_IN_GUEST_SOURCE = `'use strict'
let pending = ''
const reply = (message) => process.stdout.write(JSON.stringify(message) + '\\n')
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => {
  pending += chunk
  for (let end = pending.indexOf('\\n'); end >= 0; end = pending.indexOf('\\n')) {
    const line = pending.slice(0, end)
    pending = pending.slice(end + 1)
    let request
    try { request = JSON.parse(line) } catch { continue }
    if (request === null || typeof request !== 'object' || typeof request.id !== 'number') continue
    if (request.drkit === 'quiesce') reply({ drkit: 'quiesced', id: request.id, applicationConsistent: true, writers: [] })
    if (request.drkit === 'unquiesce') reply({ drkit: 'unquiesced', id: request.id })
  }
})
process.stdin.on('end', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
`

/**
 * The guest a process VM runs when the embedder names none: this Node binary running a small built-in script
 * that speaks the guest protocol and does no I/O of its own.
 *
 * @public
 */
export function builtInGuest(): GuestCommand {
  return { command: process.execPath, args: ['-e', BUILT_IN_GUEST_SOURCE, '--'] }
}
