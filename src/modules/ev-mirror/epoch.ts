import * as t from 'io-ts'
import { DrError, callAdapter } from '../../kernel/errors.js'
import type { FenceToken } from '../../kernel/fencing.js'
import type { StoragePort } from '../../ports/storage.js'

/**
 * The configuration record on a destination constituent holding the highest epoch it accepted.
 *
 * @public
 */
export const EPOCH_KEY = 'ev-mirror.epoch'

const Epoch = t.type({ epoch: t.number })

/**
 * Records `epoch` on a constituent, only ever raising it: an epoch older than the one recorded is refused with
 * `E_FENCED` (a coordinator that missed a failover or a reversal), the same one changes nothing.
 *
 * @public
 */
export async function recordEpoch(storage: StoragePort, volume: string, epoch: number, token: FenceToken, relationship: string): Promise<void> {
  const recorded = await callAdapter(storage.kind, 'getConfig', () => storage.getConfig(volume, EPOCH_KEY))
  const current = Epoch.is(recorded) ? recorded.epoch : 0
  if (epoch < current) throw new DrError('E_FENCED', `epoch ${epoch} of "${relationship}" is older than ${current} on ${volume}`, { epoch, current, volume })
  if (epoch > current) await callAdapter(storage.kind, 'putConfig', () => storage.putConfig(volume, EPOCH_KEY, { epoch }, token))
}
