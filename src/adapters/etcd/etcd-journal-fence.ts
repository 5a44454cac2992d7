import * as t from 'io-ts'
import type { ICompare, IKeyValue, IRequestOp } from 'etcd3'
import { DrError } from '../../kernel/errors.js'
import { NonNegativeInt } from '../../kernel/codecs.js'
import { decode } from '../../kernel/decode.js'
import { StreamName } from '../../kernel/state-store-input.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { EtcdConnection } from './etcd-connection.js'
import type { EtcdKeys } from './etcd-keys.js'

const TokenInput = t.type({ scope: StreamName, value: NonNegativeInt }, 'FenceToken')

/**
 * The lease a journal's writes are bound to: the leadership key of the token's scope (`<prefix>/l/<scope>`, written
 * by the etcd lease manager on the same prefix) and the token, which is that key's create revision. Every append
 * and snapshot transaction compares the key's create revision with the token, so once the lease has expired or
 * passed to another coordinator etcd itself refuses the write — however long this process was paused.
 */
export class JournalFence {
  readonly token: FenceToken
  readonly #key: Buffer

  private constructor(key: Buffer, token: FenceToken) {
    this.#key = key
    this.token = token
  }

  /**
   * Checks that `token` holds its scope's leadership key now and returns the fence for it: `E_INVALID_INPUT` when it
   * is not a token, `E_FENCED` when the key is gone or belongs to another token.
   */
  static async bind(connection: EtcdConnection, keys: EtcdKeys, token: FenceToken): Promise<JournalFence> {
    const valid = decode(TokenInput, token, 'StateStore.fence token')
    const fence = new JournalFence(keys.lease(valid.scope), { scope: valid.scope, value: valid.value })
    const response = await connection.call('state store', 'fence', () => connection.client.kv.range({ key: fence.#key }))
    const refusal = fence.refusal(response.kvs[0])
    if (refusal !== undefined) throw refusal
    return fence
  }

  /** The bytes the fence adds to one transaction: its key, compared and read, with their framing. */
  get overhead(): number {
    return this.#key.length * 2 + 64
  }

  /** The compare that keeps a transaction from applying once the token no longer holds the key. */
  compare(): ICompare {
    return { key: this.#key, target: 'Create', result: 'Equal', create_revision: this.token.value }
  }

  /** A read of the leadership key, for a transaction's failure branch (to tell a lost lease from a conflict). */
  read(): IRequestOp {
    return { request_range: { key: this.#key } }
  }

  /** `E_FENCED` when `holder` (the leadership key as read, if present) shows the token no longer holds the scope. */
  refusal(holder: IKeyValue | undefined): DrError | undefined {
    const current = holder === undefined ? undefined : Number(holder.create_revision)
    if (current === this.token.value) return undefined
    const why = current === undefined ? 'its lease key is gone' : `the scope is held with token ${current}`
    return new DrError(
      'E_FENCED',
      `etcd state store: fence token ${this.token.value} of scope "${this.token.scope}" no longer holds its lease (${why}); ` +
        'writes are refused. The token must come from the etcd lease manager on the same prefix (etcdCoordination).',
      { adapter: 'etcd', scope: this.token.scope, token: this.token.value, ...(current === undefined ? {} : { current }) },
    )
  }
}
