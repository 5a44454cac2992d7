export type * from './storage.js'
export type * from './network.js'
export type * from './host.js'
