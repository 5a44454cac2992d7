import type { Readable, Writable } from 'node:stream'
import { isRight } from 'fp-ts/lib/Either.js'
import type { DrError } from '../../kernel/errors.js'
import type { Clock } from '../../kernel/clock.js'
import { GuestReplyCodec, type GuestReply, type GuestRequest } from './guest.js'

/** The longest line a guest may print; longer lines are dropped (they cannot be protocol replies). */
const MAX_LINE_CHARS = 64 * 1024

interface PendingReply {
  readonly expect: GuestReply['drkit']
  readonly resolve: (reply: GuestReply) => void
  readonly reject: (error: DrError) => void
  readonly cancelTimer: () => void
}

const REPLY_TO: Readonly<Record<GuestRequest['drkit'], GuestReply['drkit']>> = {
  quiesce: 'quiesced',
  unquiesce: 'unquiesced',
}

/**
 * The control channel to one guest: requests go to its stdin as JSON lines, replies come back on its stdout
 * and are matched to requests by id. Lines that are not replies (the guest's own output) are ignored, and so
 * are replies nobody waits for any more (a late answer to a request that timed out).
 */
export class GuestChannel {
  readonly #stdin: Writable | null
  readonly #clock: Clock
  readonly #pending = new Map<number, PendingReply>()
  #nextId = 1
  #partial = ''
  #overlong = false

  constructor(stdin: Writable | null, stdout: Readable | null, clock: Clock) {
    this.#stdin = stdin
    this.#clock = clock
    stdin?.on('error', () => undefined)
    stdout?.setEncoding('utf8')
    stdout?.on('data', (chunk: string) => this.#receive(chunk))
    stdout?.on('error', () => undefined)
  }

  /**
   * Sends `op` and waits for its reply. Rejects with `timedOut()` when no reply came within `timeoutMs`, and
   * with whatever {@link GuestChannel.failAll} is given if the guest goes away first.
   */
  request(op: GuestRequest['drkit'], timeoutMs: number, timedOut: () => DrError): Promise<GuestReply> {
    const id = this.#nextId++
    return new Promise<GuestReply>((resolve, reject) => {
      const cancelTimer = this.#clock.setTimer(timeoutMs, () => {
        this.#pending.delete(id)
        reject(timedOut())
      })
      this.#pending.set(id, { expect: REPLY_TO[op], resolve, reject, cancelTimer })
      this.#write({ drkit: op, id })
    })
  }

  /** Sends `op` without waiting for a reply (to release a guest after a timed-out quiesce). */
  notify(op: GuestRequest['drkit']): void {
    this.#write({ drkit: op, id: this.#nextId++ })
  }

  /** Rejects every request still waiting for a reply with `error` (the guest exited, the host closed). */
  failAll(error: DrError): void {
    for (const pending of this.#pending.values()) {
      pending.cancelTimer()
      pending.reject(error)
    }
    this.#pending.clear()
  }

  #write(request: GuestRequest): void {
    const stdin = this.#stdin
    if (stdin === null || !stdin.writable) return
    stdin.write(`${JSON.stringify(request)}\n`)
  }

  #receive(chunk: string): void {
    let text = chunk
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n')) {
      const line = this.#partial + text.slice(0, end)
      text = text.slice(end + 1)
      this.#partial = ''
      if (this.#overlong) this.#overlong = false
      else this.#line(line)
    }
    this.#partial += text
    if (this.#partial.length > MAX_LINE_CHARS) {
      this.#partial = ''
      this.#overlong = true
    }
  }

  #line(line: string): void {
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      return
    }
    const decoded = GuestReplyCodec.decode(parsed)
    if (!isRight(decoded)) return
    const reply = decoded.right
    const pending = this.#pending.get(reply.id)
    if (pending === undefined || pending.expect !== reply.drkit) return
    this.#pending.delete(reply.id)
    pending.cancelTimer()
    pending.resolve(reply)
  }
}
