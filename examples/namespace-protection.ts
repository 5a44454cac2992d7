/**
 * Namespace data protection: clients reach a share through a logical path (`\\corp\eng`) that a DFS-like
 * namespace server refers to a real share. The volume behind the share is mirrored east → west, and the link
 * point is protected by a policy with automatic failover. Someone deletes the share at east while the storage
 * server stays healthy: drkit's share probes notice, the policy fails the link (and the mirror) over, and a
 * client resolving the unchanged logical path is referred to west, where it reads the mirrored bytes.
 *
 * Run: npx tsx examples/namespace-protection.ts
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryNamespaceServer, createDrSystem, fileStateStore, localStorage, tcpNetwork } from '../src/index.js'

const BLOCK = 4096
const LINK = { namespace: 'corp', path: '/eng' }
const root = await mkdtemp(join(tmpdir(), 'drkit-namespace-'))
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16)

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; waited < 30_000; waited += 20) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function check(what: string, ok: boolean): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) throw new Error(`verification failed: ${what}`)
}

try {
  // The referral server your clients ask; here one in memory, shared by both sites' network adapters.
  const namespaceServer = new MemoryNamespaceServer()
  const eastNet = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true, namespaceServer })
  const westNet = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true, namespaceServer })
  eastNet.setPeer('west', await westNet.address())
  westNet.setPeer('east', await eastNet.address())

  await using dr = await createDrSystem({
    state: fileStateStore({ dir: join(root, 'state') }),
    sites: {
      east: { storage: localStorage({ dir: join(root, 'east') }), network: eastNet },
      west: { storage: localStorage({ dir: join(root, 'west') }), network: westNet },
    },
  })
  const east = dr.site('east').storage
  const west = dr.site('west').storage
  let failedProbes = 0
  dr.events.on('namespace.shareInaccessible', (e) => {
    failedProbes = e.payload.failures
    console.log(`namespace.shareInaccessible  ${e.payload.site}/${e.payload.share} after ${e.payload.failures} failed probes`)
  })
  dr.events.on('namespace.linkFailedOver', (e) => console.log(`namespace.linkFailedOver     ${e.payload.path} → ${e.payload.to.site}/${e.payload.to.share}`))

  // A volume holding the engineering share, mirrored to west.
  await east.createVolume({ name: 'eng-vol', sizeBytes: 4 * 2 ** 20, blockSize: BLOCK }, dr.token())
  const files = randomBytes(64 * BLOCK)
  await east.write('eng-vol', 0, files, dr.token())
  await east.createShare({ name: 'eng', volume: 'eng-vol', path: '/eng', protocol: 'smb', access: ['read', 'write'] }, dr.token())
  await dr.mirrors.create({ id: 'eng', source: { site: 'east', volume: 'eng-vol' }, destination: { site: 'west' }, cut: { every: '1h' } })
  await until('the initial copy to reach west', async () => (await dr.mirrors.status('eng')).lastPlayedBack !== null)

  // The logical namespace, and a policy: fail over on our own after two failed probes, breaking the mirror.
  await dr.namespace.createNamespace({ namespace: LINK.namespace })
  await dr.namespace.createLink({ ...LINK, targets: [{ site: 'east', share: 'eng' }] })
  await dr.namespace.createPolicy({ name: 'gold', automaticFailover: true, breakMirror: true, failuresBeforeInaccessible: 2, mirrorFailoverMode: 'default' })
  await dr.namespace.protect({ ...LINK, policy: 'gold', mirrorId: 'eng', destinationShare: 'eng_dr' })
  const before = await namespaceServer.resolve(LINK.namespace, '/eng/plan.doc')
  check('\\\\corp\\eng\\plan.doc is referred to east/eng', before.target.site === 'east' && before.target.share === 'eng')

  // The share is deleted by mistake. The server is fine: its volume is online, only the share is gone.
  await east.deleteShare('eng', dr.token())
  check('the volume behind the share is still online at east', (await east.volumeInfo('eng-vol')).online)

  // The monitor runs on the policy's interval (30 s by default); probeNow runs a pass right away.
  await until('the link to fail over', async () => {
    await dr.namespace.probeNow()
    await dr.namespace.idle()
    return (await dr.namespace.get(LINK)).protection?.state === 'failedOver'
  })
  check(`the share was declared inaccessible after ${failedProbes} failed probes, as the policy says`, failedProbes === 2)

  // A client resolves the same logical path and is referred to west; it reads the files there.
  const after = await namespaceServer.resolve(LINK.namespace, '/eng/plan.doc')
  check(`\\\\corp\\eng\\plan.doc is now referred to ${after.target.site}/${after.target.share} (remainder ${after.remainder})`, after.target.site === 'west' && after.target.share === 'eng_dr')
  const share = await dr.site(after.target.site).storage.getShare(after.target.share)
  check(`west/eng_dr exports ${share?.path ?? 'nothing'} of volume ${share?.volume ?? 'none'}`, share !== undefined && share.path === '/eng')
  const read = await west.read(share?.volume ?? 'eng-vol', 0, files.length)
  check(`the client reads the mirrored bytes at west (sha ${sha(read)} = ${sha(files)})`, sha(read) === sha(files))
  const mirror = await dr.mirrors.status('eng')
  check(`the mirror was broken (state ${mirror.state}): west's copy is writable now`, (await west.volumeInfo(share?.volume ?? 'eng-vol')).writable)
  console.log('namespace protection: every verification passed')
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await rm(root, { recursive: true, force: true })
}
