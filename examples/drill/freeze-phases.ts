import { randomBytes } from 'node:crypto'
import type { DrillReport } from './report.js'
import type { DrillWorld } from './sites.js'

const VOLUME = 'ledger'
const MOUNT = '/mnt/ledger'
const BLOCK = 4096

/**
 * At west, now the primary: a ledger volume mounted at /mnt/ledger is damaged underneath a running application
 * (a bad write lands directly on the storage). drkit restores it from its last good snapshot while the
 * application's I/O is held — not failed — then remounts it at the same path and replays the application's
 * acknowledged writes. The application never sees an error.
 */
export async function frozenRestorePhase(world: DrillWorld, report: DrillReport): Promise<void> {
  const { dr } = world
  const west = dr.site('west').storage
  await west.createVolume({ name: VOLUME, sizeBytes: 8 * 2 ** 20, blockSize: BLOCK }, dr.token())
  const good = randomBytes(64 * BLOCK)
  await west.write(VOLUME, 0, good, dr.token())
  await dr.snapshots.create({ site: 'west', volume: VOLUME, name: 'good' })
  await dr.freeze.protect({ site: 'west', volume: VOLUME, mountPath: MOUNT, identity: 'ledger-fs-1', sources: [{ kind: 'snapshot', snapshot: 'good' }], freezeTimeoutMs: '30s' })
  const windows: Array<number | null> = []
  const stop = dr.events.on('freeze.thawed', (event) => windows.push(event.payload.freezeWindowMs))

  const app = await dr.freeze.open({ site: 'west', mountPath: MOUNT })
  const committed = randomBytes(BLOCK)
  await app.write(10 * BLOCK, committed) // acknowledged by drkit before the damage
  await west.write(VOLUME, 20 * BLOCK, randomBytes(8 * BLOCK), dr.token()) // the damage, under the application

  const restore = dr.freeze.restore({ site: 'west', volume: VOLUME })
  const errors: unknown[] = []
  // The application keeps going during the restore: these calls are held while the volume is frozen.
  const io = await Promise.all(
    Array.from({ length: 16 }, (_, n) => app.read((20 + (n % 8)) * BLOCK, BLOCK).catch((error: unknown) => errors.push(error))),
  )
  await restore
  stop()
  const repaired = Buffer.from(await app.read(20 * BLOCK, 8 * BLOCK)).equals(good.subarray(20 * BLOCK, 28 * BLOCK))
  const kept = Buffer.from(await app.read(10 * BLOCK, BLOCK)).equals(committed)
  await app.close()
  const view = await dr.freeze.get({ site: 'west', volume: VOLUME })
  const mount = await dr.site('west').host().getMount(MOUNT)
  report.state('frozen restore', `16 reads issued during the restore all completed without an error (${io.length} answered)`, errors.length === 0)
  report.bytes('frozen restore', 'the damaged blocks hold the last good snapshot again, byte for byte', repaired)
  report.bytes('frozen restore', 'the write the application had been acknowledged survived the restore, byte for byte', kept)
  report.state(
    'frozen restore',
    `${VOLUME} is mounted again at ${MOUNT} with its identity unchanged, and thawed`,
    mount?.identity === 'ledger-fs-1' && view.status === 'protected' && windows.length === 1,
  )
  report.metrics.freezeWindowMs = windows[0] ?? null
}
