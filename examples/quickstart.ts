/**
 * Quick start: a volume on the embedded local storage and the file journal; a snapshot before a risky change, and
 * a restore; a schedule every 15 minutes with a retention grid, run for three hours of a manual clock (so the
 * example takes seconds, not hours); and a restart that finds the catalog and the schedule again — and the
 * schedule carrying on.
 *
 * Run: npx tsx examples/quickstart.ts [--dir <path>]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ManualClock, createDrSystem, fileStateStore, localStorage, type DrSystem } from '../src/index.js'

const dirFlag = process.argv.indexOf('--dir')
const keep = dirFlag >= 0
const root = keep ? (process.argv[dirFlag + 1] ?? './drkit-quickstart') : await mkdtemp(join(tmpdir(), 'drkit-quickstart-'))
const token = { scope: 'quickstart', value: 1 }
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
const MINUTE = 60_000
const SCHEDULE = 'db-quarter-hourly'

// Schedules, retention and leases all read the system's clock: a manual one lets the example move time itself.
const clock = new ManualClock(Date.UTC(2026, 0, 1))

function check(what: string, ok: boolean): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) throw new Error(`verification failed: ${what}`)
}

async function open(): Promise<DrSystem> {
  return createDrSystem({
    clock,
    state: fileStateStore({ dir: join(root, 'state'), clock }),
    sites: { east: { storage: localStorage({ dir: join(root, 'east') }) } },
  })
}

/**
 * Moves the clock 15 minutes on, and waits until the schedule's run at that time has finished: its snapshot taken,
 * the snapshots its retention grid no longer keeps expired, and its timer armed again (every timer the system had
 * before is pending again).
 */
async function quarterHour(dr: DrSystem): Promise<void> {
  const armed = clock.pendingTimers
  const ranAt = clock.now() + 15 * MINUTE
  await clock.advance(15 * MINUTE)
  for (let waited = 0; dr.snapshots.listSchedules().find((s) => s.id === SCHEDULE)?.lastRunAt !== ranAt || clock.pendingTimers < armed; waited += 10) {
    if (waited > 30_000) throw new Error(`the schedule did not run at ${new Date(ranAt).toISOString()}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** The snapshots the schedule took that the catalog still holds, as times of day (`HH:MM`), oldest first. */
async function scheduled(dr: DrSystem): Promise<string[]> {
  const snapshots = await dr.snapshots.list({ site: 'east', volume: 'db' })
  return snapshots
    .filter((s) => s.schedule === SCHEDULE)
    .sort((a, b) => a.createdAt - b.createdAt)
    .map((s) => new Date(s.createdAt).toISOString().slice(11, 16))
}

try {
  {
    await using dr = await open()
    const east = dr.site('east').storage
    dr.events.on('snapshot.restored', (e) => console.log(`snapshot.restored ${e.payload.volume}@${e.payload.name}`))

    await east.createVolume({ name: 'db', sizeBytes: 64 * 1024 * 1024 }, token)
    await east.write('db', 0, new TextEncoder().encode('schema v1'), token)
    await dr.snapshots.create({ site: 'east', volume: 'db', name: 'before-upgrade', labels: { reason: 'upgrade' } })

    await east.write('db', 0, new TextEncoder().encode('schema v2 (broken)'), token)
    console.log(`after the upgrade: "${text(await east.read('db', 0, 18))}"`)
    await dr.snapshots.restore({ site: 'east', volume: 'db', name: 'before-upgrade' })
    check('the restore brought back "schema v1"', text(await east.read('db', 0, 9)) === 'schema v1')

    // A snapshot every 15 minutes; keep the newest 4, the newest of each of the last 24 hours and of the last 7 days.
    await dr.snapshots.addSchedule({
      id: SCHEDULE,
      site: 'east',
      volume: 'db',
      spec: { every: '15m' },
      retention: { keepLast: 4, buckets: [{ every: '1h', count: 24 }, { every: '1d', count: 7 }] },
    })
    let taken = 0
    let expired = 0
    dr.events.on('snapshot.created', (e) => (taken += e.payload.schedule === SCHEDULE ? 1 : 0))
    dr.events.on('snapshot.expired', (e) => (expired += e.payload.schedule === SCHEDULE ? 1 : 0))
    for (let quarter = 0; quarter < 12; quarter++) await quarterHour(dr)
    const kept = await scheduled(dr)
    console.log(`after three hours (00:15 to 03:00) the schedule keeps: ${kept.join(', ')}`)
    check('the schedule took a snapshot at each of the 12 quarter hours', taken === 12)
    check(`retention expired ${expired} of them, those the grid no longer keeps`, expired === 12 - kept.length && expired > 0)
    // At 03:00 the grid keeps the newest 4 (02:15-03:00) and the newest of each hour (00:45, 01:45, 02:45, 03:00).
    check('the grid kept the newest four and the newest of each hour', kept.join(' ') === '00:45 01:45 02:15 02:30 02:45 03:00')
  }
  {
    await using dr = await open()
    const names = (await dr.snapshots.list({ site: 'east', volume: 'db' })).map((s) => s.name)
    check('after a restart the catalog still holds before-upgrade', names.includes('before-upgrade'))
    check(`after a restart the schedule is still there (${SCHEDULE})`, dr.snapshots.listSchedules().some((s) => s.id === SCHEDULE))
    await quarterHour(dr)
    const kept = await scheduled(dr)
    console.log(`15 minutes after the restart the schedule keeps: ${kept.join(', ')}`)
    // 03:15 is taken; 02:15 falls out of the newest four and is not the newest of its hour.
    check('the restarted schedule took 03:15 and expired 02:15', kept.join(' ') === '00:45 01:45 02:30 02:45 03:00 03:15')
  }
  console.log('quickstart: every verification passed')
} finally {
  if (!keep) await rm(root, { recursive: true, force: true })
}
