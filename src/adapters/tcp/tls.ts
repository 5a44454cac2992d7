import { BlockList, isIP } from 'node:net'
import type { ConnectionOptions, PeerCertificate, TLSSocket, TlsOptions } from 'node:tls'

const LOOPBACK = (() => {
  const list = new BlockList()
  list.addSubnet('127.0.0.0', 8, 'ipv4')
  list.addAddress('::1', 'ipv6')
  list.addSubnet('::ffff:127.0.0.0', 104, 'ipv6')
  return list
})()

/**
 * The TLS material of one site: its private key and certificate (PEM), and the CA certificate(s) it trusts for
 * its peers. The certificate's subject CN or a DNS subject-alternative name must be the site's name.
 *
 * @public
 */
export interface TcpTlsMaterial {
  readonly key: string | Buffer
  readonly cert: string | Buffer
  readonly ca: string | Buffer
}

/**
 * True when `host` names this machine only: `localhost`, an IPv4 address in 127.0.0.0/8, `::1`, or an IPv4
 * loopback address mapped into IPv6. Plaintext channels are allowed only between such addresses.
 *
 * @public
 */
export function isLoopbackHost(host: string): boolean {
  const name = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (name === 'localhost') return true
  const family = isIP(name)
  return family !== 0 && LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6')
}

/** The names a certificate vouches for: its subject CN(s) and its DNS subject-alternative names. */
export function certificateNames(certificate: PeerCertificate): string[] {
  const names: string[] = []
  const cn = certificate.subject?.CN
  if (typeof cn === 'string') names.push(cn)
  else if (Array.isArray(cn)) names.push(...cn)
  for (const entry of (certificate.subjectaltname ?? '').split(/,\s*/)) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4).replace(/^"(.*)"$/, '$1'))
  }
  return names
}

/**
 * Why the peer at the other end of `socket` may not act as `site`, or `undefined` when it may: its certificate
 * must chain to the trusted CA and name `site` in its subject CN or a DNS subject-alternative name.
 */
export function peerIdentityProblem(socket: TLSSocket, site: string): string | undefined {
  if (!socket.authorized) {
    const why = socket.authorizationError
    return `certificate not trusted (${why instanceof Error ? why.message : String(why ?? 'no certificate')})`
  }
  const certificate = socket.getPeerCertificate()
  if (certificate === null || typeof certificate !== 'object' || Object.keys(certificate).length === 0) {
    return 'no certificate presented'
  }
  const names = certificateNames(certificate)
  if (!names.includes(site)) return `certificate is for ${JSON.stringify(names)}, not for site "${site}"`
  return undefined
}

/**
 * Server options for mutual TLS: the site's key and certificate, its CA, and a demand for a client certificate.
 * Untrusted clients are not cut off by the TLS layer but checked after the handshake frame (by
 * {@link peerIdentityProblem}), so that the refusal can be reported with the site the client claimed.
 */
export function tlsServerOptions(material: TcpTlsMaterial): TlsOptions {
  return {
    key: material.key,
    cert: material.cert,
    ca: material.ca,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
  }
}

/**
 * Client options for mutual TLS to `host:port`. The server's identity is checked against the site being
 * connected to (not the host name) by {@link peerIdentityProblem} before anything is sent.
 */
export function tlsClientOptions(material: TcpTlsMaterial, host: string, port: number): ConnectionOptions {
  return {
    host,
    port,
    key: material.key,
    cert: material.cert,
    ca: material.ca,
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
    minVersion: 'TLSv1.2',
    ...(isIP(host) === 0 ? { servername: host } : {}),
  }
}
